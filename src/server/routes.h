// Route tables of the three APIs served on one port.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "server/context.h"

namespace jing::server {

using Route = std::function<void(ServerContext&, const HttpRequest&, HttpResponder&)>;
using Routes = std::map<std::pair<std::string, std::string>, Route>;  // (method, path)

void add_openai_routes(Routes& r);
void add_ollama_routes(Routes& r);
void add_llama_routes(Routes& r);

// Helpers for handlers.
void send_json(HttpResponder& out, int status, const json& body);
json usage_json(const runtime::RequestResult& r);
// llama-server's "timings": prompt and generation token counts, milliseconds and tokens per second.
json timings_json(const runtime::RequestResult& r);
json model_details(const LoadedModel& lm);

}  // namespace jing::server
