// Pre-tokenization: the regexes each model family splits text with before BPE, run by PCRE2
// (UTF mode, Unicode properties, JIT). Several regexes apply in turn, each splitting the pieces
// the previous one produced; text between matches stays a piece of its own.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jing::tok {

class PreTokenizer {
 public:
  // The regex list for a tokenizer.ggml.pre name; throws jing::Error for names it does not know.
  explicit PreTokenizer(const std::string& pre_name);
  ~PreTokenizer();
  std::vector<std::string_view> split(std::string_view text) const;
  bool nfc() const { return nfc_; }  // whether the family normalizes to NFC first

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
  bool nfc_ = false;
};

// NFC normalization (utf8proc); invalid UTF-8 is returned unchanged.
std::string nfc_normalize(std::string_view text);

}  // namespace jing::tok
