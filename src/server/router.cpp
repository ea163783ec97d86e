// Dispatch: API-key check, route lookup, and errors in OpenAI's error object.
#include <strings.h>

#include <algorithm>

#include "common/error.h"
#include "server/routes.h"
#include "server/webui.h"

namespace jing::server {

void send_json(HttpResponder& out, int status, const json& body) {
  out.send(status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

// OpenAI's error object, or Ollama's {"error": "text"} on Ollama's routes: its clients (the ollama
// package, Open WebUI's Ollama router) read "error" as the message itself.
void send_error(HttpResponder& out, const HttpRequest& req, int status, const std::string& message, const std::string& type) {
  json body = {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
  if (req.path.rfind("/api/", 0) == 0) body = {{"error", message}};
  std::map<std::string, std::string> extra;
  if (status == 503 || status == 429) extra.emplace("Retry-After", std::string(1, '1'));  // (GCC 12 misreads a "1" literal here: -Wrestrict)
  out.send(status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), extra);
}

}  // namespace

Handler make_router(ServerContext& ctx) {
  auto routes = std::make_shared<Routes>();
  add_openai_routes(*routes);
  add_ollama_routes(*routes);
  add_llama_routes(*routes);
  return [&ctx, routes](const HttpRequest& req, HttpResponder& out) {
    ctx.http_requests++;
    const auto& access = ctx.opts.access;
    if (!access.host_allowed(req.header("host")))
      return send_error(out, req, 403, "host '" + req.header("host") + "' is not allowed (set JING_ALLOWED_HOSTS to serve it)", "forbidden_error");
    const std::string origin = req.header("origin");
    if (!origin.empty()) {
      if (!access.origin_allowed(origin))
        return send_error(out, req, 403, "origin '" + origin + "' is not allowed (set --cors-origins or JING_ORIGINS)", "forbidden_error");
      out.add_header("Access-Control-Allow-Origin", origin);
      out.add_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {  // CORS preflight
      if (!origin.empty()) {
        out.add_header("Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS");
        const std::string asked = req.header("access-control-request-headers");
        out.add_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type, X-Api-Key" : asked);
        out.add_header("Access-Control-Max-Age", "600");
      }
      return out.send(204, "text/plain", "", {{"Allow", "GET, HEAD, POST, DELETE, OPTIONS"}});
    }
    // The chat page (no key needed: static files; its API calls carry the key). Browsers asking for
    // "/" get the page; Ollama's clients probe GET and HEAD "/" asking for JSON, and get the text.
    if (ctx.opts.webui && serve_webui(req, out)) return;
    if (req.path == "/" && (req.method == "GET" || req.method == "HEAD"))
      return out.send(200, "text/plain", "Jing is running", {{"Vary", "Accept"}});
    if (!ctx.opts.api_keys.empty() && req.path != "/health") {
      std::string auth = req.header("authorization");
      // The scheme is case-insensitive (RFC 9110 11.1): "bearer KEY" is as good as "Bearer KEY".
      std::string key = auth.size() > 7 && strncasecmp(auth.c_str(), "bearer ", 7) == 0 ? auth.substr(7) : req.header("x-api-key");
      key.erase(0, key.find_first_not_of(' '));
      if (std::find(ctx.opts.api_keys.begin(), ctx.opts.api_keys.end(), key) == ctx.opts.api_keys.end())
        return send_error(out, req, 401, "Invalid API Key", "authentication_error");
    }
    // HEAD runs the GET route; the responder leaves the body out.
    auto it = routes->find({req.method == "HEAD" ? "GET" : req.method, req.path});
    if (it == routes->end()) {
      bool other_method = false;
      for (const auto& [k, _] : *routes) other_method |= k.second == req.path;
      return send_error(out, req, other_method ? 405 : 404, (other_method ? "method not allowed: " : "not found: ") + req.method + " " + req.path,
                        other_method ? "invalid_request_error" : "not_found_error");
    }
    if (ctx.shutting_down) return send_error(out, req, 503, "the server is shutting down", "unavailable_error");
    try {
      it->second(ctx, req, out);
    } catch (const ApiError& e) {
      send_error(out, req, e.status, e.what(), e.type);
    } catch (const Error& e) {
      send_error(out, req, 400, e.what(), "invalid_request_error");
    } catch (const json::exception& e) {  // a field of the wrong JSON type deep in a body
      send_error(out, req, 400, std::string("invalid request: ") + e.what(), "invalid_request_error");
    } catch (const std::exception& e) {
      send_error(out, req, 500, e.what(), "server_error");
    }
  };
}

}  // namespace jing::server
