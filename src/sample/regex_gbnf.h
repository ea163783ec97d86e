// JSON Schema `pattern` (an ECMA-262 regular expression) as a GBNF expression over the characters of
// a JSON string's content. The common subset: literals, `.`, classes [a-z] [^...], escapes \d \w \s
// \D \W \S and escaped punctuation, groups ( ) (?: ), alternation, * + ? {m} {m,} {m,n} (lazy forms
// accepted: generation is the same), anchors ^ and $ (a pattern without them matches anywhere in
// the string, as JSON Schema says). Characters that JSON writes escaped (" \ and control characters)
// are never produced. Back-references, look-arounds and other features throw std::invalid_argument.
#pragma once
#include <string>

namespace jing::sample {

// The expression for the string's content (without the quotes); plain_char is the rule name for
// "any character that needs no escape", used where the pattern leaves the rest free.
std::string regex_to_gbnf(const std::string& pattern, const std::string& plain_char);

}  // namespace jing::sample
