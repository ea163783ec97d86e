#include "tokenizer/spm.h"

#include <algorithm>
#include <cstdio>

namespace jing::tok {

namespace {
const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
}

SentencePiece::SentencePiece(Vocab vocab) : VocabTokenizer(std::move(vocab)) {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = vocab_.find(name);
    byte_tokens_[b] = id ? *id : vocab_.unk;
  }
}


void SentencePiece::encode_text(std::string_view raw, bool first, std::vector<Token>& out) const {
  if (raw.empty()) return;
  std::string text = first ? kSpace : "";
  for (char c : raw) text += c == ' ' ? kSpace : std::string(1, c);
  // Symbols: one per UTF-8 character.
  std::vector<std::string> sym;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    len = std::min(len, text.size() - i);
    sym.push_back(text.substr(i, len));
    i += len;
  }
  // Merge the adjacent pair whose union scores highest, until no union is in the vocabulary.
  while (sym.size() > 1) {
    float best = -1e30f;
    size_t at = SIZE_MAX;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto id = vocab_.find(sym[i] + sym[i + 1]);
      if (!id) continue;
      float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[static_cast<size_t>(*id)];
      if (score > best) best = score, at = i;
    }
    if (at == SIZE_MAX) break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  for (const auto& s : sym) {
    if (auto id = vocab_.find(s)) {
      out.push_back(*id);
    } else {
      for (unsigned char b : s) out.push_back(byte_tokens_[b]);
    }
  }
}

std::vector<Token> SentencePiece::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<Token> out;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  size_t start = 0;
  bool first = true;
  for (size_t i = 0; i < text.size(); ++i) {
    for (size_t t = 0; t < vocab_.tokens.size(); ++t) {
      if (!vocab_.is_special(static_cast<Token>(t))) continue;
      if (!parse_special && vocab_.types[t] == TokenType::Control) continue;
      const std::string& st = vocab_.tokens[t];
      if (st.empty() || text.compare(i, st.size(), st) != 0) continue;
      encode_text(text.substr(start, i - start), first, out);
      first = false;
      out.push_back(static_cast<Token>(t));
      i += st.size() - 1;
      start = i + 1;
      break;
    }
  }
  encode_text(text.substr(start), first, out);
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string SentencePiece::decode(const std::vector<Token>& ids) const {
  std::string out;
  for (Token t : ids) {
    if (t < 0 || static_cast<size_t>(t) >= vocab_.tokens.size()) continue;
    const std::string& s = vocab_.tokens[static_cast<size_t>(t)];
    if (vocab_.types[static_cast<size_t>(t)] == TokenType::Byte && s.size() == 6) {
      out += static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16));
      continue;
    }
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += s[i++];
      }
    }
  }
  return out;
}

}  // namespace jing::tok
