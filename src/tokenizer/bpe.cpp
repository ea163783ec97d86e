#include "tokenizer/bpe.h"

#include <algorithm>
#include <array>
#include <climits>

#include "common/error.h"

namespace jing::tok {

namespace {

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const std::array<std::string, 256>& byte_map() {
  static const std::array<std::string, 256> m = [] {
    std::array<std::string, 256> out;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      append_utf8(out[static_cast<size_t>(b)], printable ? static_cast<uint32_t>(b) : next++);
    }
    return out;
  }();
  return m;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid.
size_t utf8_len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  if (n == 2 && c < 0xC2) return 0;  // overlong
  if (n == 3) {
    uint32_t cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  }
  if (n == 4) {
    uint32_t cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
  }
  return n;
}

// Invalid UTF-8 becomes U+FFFD, so the regex engine only ever sees valid text.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map()[b]; }

ByteLevelBpe::ByteLevelBpe(Vocab vocab) : VocabTokenizer(std::move(vocab)), pre_(vocab_.pre) {
  // Reverse byte map, to decode token strings into bytes.
  std::unordered_map<std::string, uint8_t> unmap;
  for (int b = 0; b < 256; ++b) unmap[byte_map()[static_cast<size_t>(b)]] = static_cast<uint8_t>(b);
  const size_t n = vocab_.tokens.size();
  piece_bytes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = vocab_.tokens[i];
    if (vocab_.is_special(static_cast<Token>(i))) {
      piece_bytes_[i] = t;  // special and added tokens decode to their text
      continue;
    }
    std::string bytes;
    for (size_t k = 0; k < t.size();) {
      size_t len = utf8_len(t, k);
      if (len == 0) len = 1;
      auto it = unmap.find(t.substr(k, len));
      if (it != unmap.end()) bytes += static_cast<char>(it->second);
      else bytes += t.substr(k, len);
      k += len;
    }
    piece_bytes_[i] = std::move(bytes);
  }
  byte_token_.assign(256, -1);
  for (int b = 0; b < 256; ++b)
    if (auto id = vocab_.find(byte_map()[static_cast<size_t>(b)])) byte_token_[static_cast<size_t>(b)] = *id;

  merges_.reserve(vocab_.merges.size());
  for (size_t r = 0; r < vocab_.merges.size(); ++r) {
    const std::string& m = vocab_.merges[r];
    size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) continue;
    auto a = vocab_.find(std::string_view(m).substr(0, sp)), b = vocab_.find(std::string_view(m).substr(sp + 1));
    auto ab = vocab_.find(m.substr(0, sp) + m.substr(sp + 1));
    if (!a || !b || !ab) continue;
    merges_.emplace(static_cast<uint64_t>(*a) << 32 | static_cast<uint32_t>(*b), Merge{static_cast<int>(r), *ab});
  }
  for (size_t i = 0; i < n; ++i)
    if (vocab_.is_special(static_cast<Token>(i)) && !vocab_.tokens[i].empty()) specials_.push_back(static_cast<Token>(i));
  std::sort(specials_.begin(), specials_.end(),
            [&](Token a, Token b) { return vocab_.tokens[static_cast<size_t>(a)].size() > vocab_.tokens[static_cast<size_t>(b)].size(); });
  for (Token t : specials_) specials_by_first_[static_cast<unsigned char>(vocab_.tokens[static_cast<size_t>(t)][0])].push_back(t);
}


void ByteLevelBpe::encode_piece(std::string_view piece, std::vector<Token>& out) const {
  // Whole piece in the vocabulary: done (the common case for frequent words).
  std::string mapped;
  for (unsigned char c : piece) mapped += byte_map()[c];
  if (auto id = vocab_.find(mapped); id && !vocab_.is_special(*id)) {
    out.push_back(*id);
    return;
  }
  // Start from one symbol per byte (its mapped character), then merge by rank.
  std::vector<Token> sym;
  sym.reserve(piece.size());
  for (unsigned char c : piece) sym.push_back(byte_token_[c] >= 0 ? byte_token_[c] : vocab_.unk);
  while (sym.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    Token result = -1;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = merges_.find(static_cast<uint64_t>(sym[i]) << 32 | static_cast<uint32_t>(sym[i + 1]));
      if (it != merges_.end() && it->second.rank < best) best = it->second.rank, at = i, result = it->second.result;
    }
    if (result < 0) break;
    sym[at] = result;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  for (Token t : sym)
    if (t >= 0) out.push_back(t);
}

void ByteLevelBpe::encode_text(std::string_view text, std::vector<Token>& out) const {
  if (text.empty()) return;
  std::string normalized = pre_.nfc() ? nfc_normalize(text) : std::string(text);
  for (std::string_view piece : pre_.split(normalized)) encode_piece(piece, out);
}

// User-defined tokens are matched even in plain text. So are DeepSeek-V3's control tokens other
// than BOS/EOS/padding: its tokenizer.json declares them (<｜User｜>, <｜tool▁calls▁begin｜>, ...)
// as added tokens with "special": false, which GGUF's token types cannot express.
bool ByteLevelBpe::always_matched(Token t) const {
  const TokenType type = vocab_.types[static_cast<size_t>(t)];
  if (type == TokenType::UserDefined) return true;
  return vocab_.pre == "deepseek-v3" && type == TokenType::Control && t != vocab_.bos && t != vocab_.eos && t != vocab_.pad;
}

std::vector<Token> ByteLevelBpe::encode(std::string_view raw, bool add_special, bool parse_special) const {
  const std::string text = valid_utf8(raw);
  std::vector<Token> out;
  // BOS once: a prompt that already starts with the BOS text does not get a second one.
  const bool starts_with_bos = parse_special && vocab_.bos >= 0 && text.rfind(vocab_.tokens[static_cast<size_t>(vocab_.bos)], 0) == 0;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0 && !starts_with_bos) out.push_back(vocab_.bos);
  // Special tokens split the text first: control tokens only when asked, user-defined ones always.
  size_t start = 0, i = 0;
  while (i < text.size()) {
    Token hit = -1;
    for (Token s : specials_by_first_[static_cast<unsigned char>(text[i])]) {
      if (!parse_special && !always_matched(s)) continue;
      const std::string& st = vocab_.tokens[static_cast<size_t>(s)];
      if (text.compare(i, st.size(), st) == 0) {
        hit = s;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    encode_text(std::string_view(text).substr(start, i - start), out);
    out.push_back(hit);
    i += vocab_.tokens[static_cast<size_t>(hit)].size();
    start = i;
  }
  encode_text(std::string_view(text).substr(start), out);
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string ByteLevelBpe::decode(const std::vector<Token>& ids) const {
  std::string out;
  for (Token t : ids)
    if (t >= 0 && static_cast<size_t>(t) < piece_bytes_.size()) out += piece_bytes_[static_cast<size_t>(t)];
  return out;
}

}  // namespace jing::tok
