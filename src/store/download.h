// Resumable, verified downloads: a file is fetched into "<dest>.partial" over one or more HTTP
// Range connections, with its progress kept in "<dest>.state" so an interrupted download (Ctrl-C,
// SIGKILL, network loss) resumes where it stopped. Only a file whose size and sha256 match is
// renamed to <dest>; a corrupt one is deleted and reported.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace jing::store {

struct DownloadTask {
  std::string url;
  std::vector<std::string> headers;  // e.g. Authorization
  uint64_t size = 0;
  std::string sha256;                // lower-case hex; empty: size check only
  std::filesystem::path dest;
};

// Set from a SIGINT handler to stop downloads; they keep their partial state for a resume.
std::atomic<bool>& download_cancel_flag();

// Bytes already on disk for a task (a resumed download starts there).
uint64_t bytes_already_downloaded(const DownloadTask& task);

// Downloads one file. `on_bytes(total_done)` is called from the calling thread a few times a second.
void download(const DownloadTask& task, int connections, const std::function<void(uint64_t)>& on_bytes);

std::string sha256_file(const std::filesystem::path& path);

}  // namespace jing::store
