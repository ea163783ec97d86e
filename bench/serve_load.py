#!/usr/bin/env python3
"""Aggregate decode throughput of a running `jing serve` (or llama-server) under N concurrent
streaming chats: python3 bench/serve_load.py PORT STREAMS SECONDS [MAX_TOKENS].
Each client repeats a streamed /v1/chat/completions request until the time is up (then leaves
mid-stream); the figure is the completion tokens received (streamed content and reasoning
pieces) per second of the run. Standard library only (the GPU machines have no node)."""
import http.client
import json
import sys
import threading
import time


def client(port, deadline, max_tokens, out, idx):
    done_tokens = 0
    completed = 0
    while time.time() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        body = json.dumps({"model": "m", "stream": True, "max_tokens": max_tokens,
                           "messages": [{"role": "user", "content": f"Tell me a long story, number {idx}."}]})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        tokens = 0
        finished = False
        for line in resp:
            if time.time() >= deadline:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                finished = True
                break
            delta = json.loads(data)["choices"][0].get("delta", {})
            if delta.get("content") or delta.get("reasoning_content"):
                tokens += 1
        conn.close()
        done_tokens += tokens
        completed += 1 if finished else 0
    out[idx] = (done_tokens, completed)


def main():
    port, streams, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    out = [None] * streams
    start = time.time()
    deadline = start + seconds
    threads = [threading.Thread(target=client, args=(port, deadline, max_tokens, out, i)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = seconds
    tokens = sum(o[0] for o in out)
    completed = sum(o[1] for o in out)
    print(json.dumps({"streams": streams, "seconds": round(elapsed, 1), "requests_completed": completed,
                      "tokens": tokens, "aggregate_tokens_per_s": round(tokens / elapsed, 1)}))


if __name__ == "__main__":
    main()
