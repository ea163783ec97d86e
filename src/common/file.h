// Whole-file reads for the CLI and tools; a missing or unreadable file is a jing::Error naming it.
#pragma once
#include <filesystem>
#include <string>

namespace jing {

std::string read_text_file(const std::filesystem::path& path);
std::string read_stdin();

}  // namespace jing
