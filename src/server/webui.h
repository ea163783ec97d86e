// The built-in chat page: the files of src/server/webui, compiled into the binary by
// cmake/embed_files.cmake, served at "/" (to browsers) and /webui/<path>.
#pragma once
#include <cstddef>
#include <span>

#include "server/http.h"

namespace jing::server {

struct EmbeddedFile {
  const char* path;           // relative to src/server/webui, e.g. "app.js"
  const unsigned char* data;
  size_t size;
  const char* etag;           // quoted, from the file's SHA-256
};

// Defined in the generated webui_files.cpp.
std::span<const EmbeddedFile> webui_files();

// Answers a GET or HEAD for the page: "/" when the client accepts text/html (a browser; Ollama's
// clients probing "/" ask for JSON and get the plain text), and /webui/<path>. False when the
// request is not for one of its files.
bool serve_webui(const HttpRequest& req, HttpResponder& out);

}  // namespace jing::server
