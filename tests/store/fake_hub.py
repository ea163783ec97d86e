#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub on 127.0.0.1, for the store tests.

Serves repositories from local folders the way the hub does for its clients:
  GET  /api/models/OWNER/REPO/tree/main?recursive=true   file listing (paginated, Link: rel="next")
  HEAD/GET /OWNER/REPO/resolve/main/PATH                  302 to a CDN path, with X-Linked-Etag/-Size
  HEAD/GET /cdn/SHA256                                    the bytes, with Range (206) and ETag
Options: --throttle B/s (slow transfers), --corrupt (flip one byte of every file served),
--token T (require Authorization: Bearer T), --log FILE (one line per request with its Range).
"""
import argparse, hashlib, http.server, json, os, socketserver, sys, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--repo", action="append", default=[], help="OWNER/REPO=DIR")
ap.add_argument("--port-file", required=True)
ap.add_argument("--throttle", type=int, default=0)
ap.add_argument("--corrupt", action="store_true")
ap.add_argument("--token", default="")
ap.add_argument("--log", default="")
ap.add_argument("--page-size", type=int, default=2)
args = ap.parse_args()

repos, blobs = {}, {}
for spec in args.repo:
    name, d = spec.split("=", 1)
    files = []
    for root, _, names in os.walk(d):
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, d)
            h = hashlib.sha256(open(full, "rb").read()).hexdigest()
            size = os.path.getsize(full)
            files.append({"type": "file", "path": rel, "size": size, "oid": hashlib.sha1(rel.encode()).hexdigest(),
                          "lfs": {"oid": h, "size": size, "pointerSize": 134}})
            blobs[h] = full
    repos[name] = sorted(files, key=lambda f: f["path"])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if args.log:
            with open(args.log, "a") as f:
                f.write("%s %s range=%s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authorized(self):
        return not args.token or self.headers.get("Authorization") == "Bearer " + args.token

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        parts = url.path.strip("/").split("/")
        if not self.authorized() and parts[0] != "cdn":
            return self.reply(401, b'{"error":"unauthorized"}')
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            repo = "/".join(parts[2:4])
            if repo not in repos:
                return self.reply(404, b'{"error":"Repository not found"}')
            q = urllib.parse.parse_qs(url.query)
            cursor = int(q.get("cursor", ["0"])[0])
            page = repos[repo][cursor:cursor + args.page_size]
            headers = {"Content-Type": "application/json"}
            if cursor + args.page_size < len(repos[repo]):
                nxt = "http://%s%s?recursive=true&cursor=%d" % (self.headers["Host"], url.path, cursor + args.page_size)
                headers["Link"] = '<%s>; rel="next"' % nxt
            return self.reply(200, json.dumps(page).encode(), headers)
        if len(parts) >= 5 and parts[2:4] == ["resolve", "main"]:
            repo, path = "/".join(parts[:2]), "/".join(parts[4:])
            for f in repos.get(repo, []):
                if f["path"] == path:
                    h = f["lfs"]["oid"]
                    return self.reply(302, b"", {"Location": "/cdn/" + h + "?expires=1", "X-Linked-Etag": '"%s"' % h,
                                                 "X-Linked-Size": str(f["size"]), "ETag": '"%s"' % h})
            return self.reply(404, b"Entry not found")
        if parts[0] == "cdn" and len(parts) == 2 and parts[1] in blobs:
            return self.send_blob(parts[1])
        self.reply(404, b"not found")

    def send_blob(self, h):
        data = open(blobs[h], "rb").read()
        if args.corrupt:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
        start, end, code = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start, end, code = int(a), (int(b) if b else len(data) - 1), 206
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
        body = data[start:end + 1]
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"%s"' % h)
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        step = 16384
        for i in range(0, len(body), step):
            try:
                self.wfile.write(body[i:i + step])
            except (BrokenPipeError, ConnectionResetError):
                return
            if args.throttle:
                time.sleep(step / args.throttle)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
srv.serve_forever()
