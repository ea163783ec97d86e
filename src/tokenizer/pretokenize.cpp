#include "tokenizer/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <map>

#include "common/error.h"

namespace jing::tok {

namespace {

// The split patterns of each family, from its tokenizer.json (the names are those the GGUF
// converters write into tokenizer.ggml.pre).
const char* const kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const char* const kDeepseekV3Words =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Family {
  std::vector<std::string> regexes;
  bool nfc;
};

// A regex list and every tokenizer.ggml.pre name that uses it (the grouping llama.cpp's
// llama-vocab.cpp applies; NFC only where the family's tokenizer.json normalizes).
struct Group {
  std::vector<const char*> names;
  Family family;
};

const std::map<std::string, Family>& families() {
  static const std::map<std::string, Family> f = [] {
    const std::vector<Group> groups = {
        {{"default", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
          "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt", "olmo", "jais", "trillion",
          "granite-docling"},
         {{kGpt2}, false}},
        {{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "smaug-bpe",
          "dbrx"},
         {{kLlama3}, false}},
        {{"qwen2", "deepseek-r1-qwen"}, {{kQwen2}, true}},
        {{"stablelm2", "kormo", "f2llmv2", "megrez", "hunyuan", "solar-open"}, {{kQwen2}, false}},
        {{"deepseek-v3", "hunyuan-dense", "joyai-llm"}, {{R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)", kDeepseekV3Words}, false}},
        {{"deepseek-llm"},
         {{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+$)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N}+)"}, false}},
        {{"deepseek-coder"}, {{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N})"}, false}},
        {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
         {{R"(\p{N})", kGpt2}, false}},
        {{"falcon"}, {{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, R"([0-9][0-9][0-9])"}, false}},
    };
    std::map<std::string, Family> m;
    for (const auto& g : groups)
      for (const char* name : g.names) m.emplace(name, g.family);
    return m;
  }();
  return f;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::string& name) {
  auto it = families().find(name);
  if (it == families().end()) {
    std::string known;
    for (const auto& [k, _] : families()) known += (known.empty() ? "" : ", ") + k;
    throw Error("unsupported pre-tokenizer '" + name + "' (known: " + known + ")");
  }
  nfc_ = it->second.nfc;
  for (const auto& pattern : it->second.regexes) {
    int err = 0;
    PCRE2_SIZE off = 0;
    auto r = std::make_unique<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err,
                            &off, nullptr);
    if (!r->code) throw Error("pre-tokenizer regex failed to compile at offset " + std::to_string(off));
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    regexes_.push_back(std::move(r));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces{text};
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  for (const auto& r : regexes_) {
    std::vector<std::string_view> next;
    for (std::string_view piece : pieces) {
      PCRE2_SIZE at = 0;
      while (at < piece.size()) {
        int rc = pcre2_match(r->code, reinterpret_cast<PCRE2_SPTR>(piece.data()), piece.size(), at, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[0] > at) next.push_back(piece.substr(at, ov[0] - at));  // text between matches
        if (ov[1] == ov[0]) {  // empty match: step one character on
          size_t step = 1;
          while (ov[1] + step < piece.size() && (static_cast<unsigned char>(piece[ov[1] + step]) & 0xC0) == 0x80) ++step;
          next.push_back(piece.substr(ov[0], step));
          at = ov[0] + step;
          continue;
        }
        next.push_back(piece.substr(ov[0], ov[1] - ov[0]));
        at = ov[1];
      }
      if (at < piece.size()) next.push_back(piece.substr(at));
    }
    pieces = std::move(next);
  }
  pcre2_match_data_free(md);
  return pieces;
}

std::string nfc_normalize(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()), &out,
                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(text);
  std::string s(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return s;
}

}  // namespace jing::tok
