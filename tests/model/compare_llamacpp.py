#!/usr/bin/env python3
"""Side-by-side check of Jing's logits against llama.cpp on any GGUF (no fixture needed).

llama.cpp's perplexity tool saves its log-probabilities (uint16-packed, second half of every window):
  llama-perplexity -m M.gguf -f TEXT -c 128 --chunks 4 -t 2 -b 128 --kl-divergence-base M.base
then this script runs `jing logits` on the same windows and prints the mean/max KL divergence, the
share of positions with the same top token and both perplexities over the scored tokens:
  python3 compare_llamacpp.py JING_BINARY M.gguf M.base [ADD_BOS BOS_ID]
Used for the architectures and settings without a fixture (qwen3, YaRN on qwen2); not run by CTest
because it needs a llama.cpp build. Pure Python (no numpy), a few seconds for 4 windows of 128.
"""
import array, math, os, struct, subprocess, sys, tempfile

jing, model, base = sys.argv[1:4]
add_bos = len(sys.argv) > 4 and sys.argv[4] == "1"
bos = int(sys.argv[5]) if len(sys.argv) > 5 else 0
d = open(base, "rb").read()
assert d[:8] == b"_logits_"
n_ctx, = struct.unpack_from("<i", d, 8)
n_vocab, n_chunk = struct.unpack_from("<ii", d, 12)
off = 20
tokens = list(struct.unpack_from("<%di" % (n_chunk * n_ctx), d, off)); off += 4 * n_chunk * n_ctx
nv = 2 * ((n_vocab + 1) // 2) + 4
first = n_ctx // 2
out = os.path.join(tempfile.mkdtemp(), "logits.f32")
kl_sum = kl_max = 0.0; n = same = 0; nll_ours = nll_base = 0.0
for c in range(n_chunk):
    toks = tokens[c * n_ctx:(c + 1) * n_ctx]
    ids = list(toks)
    if add_bos: ids[0] = bos
    subprocess.run([jing, "logits", model, "--ids", ",".join(map(str, ids)), "--out", out, "-t", "2"], check=True, capture_output=True)
    lg = array.array("f"); lg.frombytes(open(out, "rb").read())
    for i in range(first, n_ctx - 1):
        row = lg[i * n_vocab:(i + 1) * n_vocab]
        mx = max(row); lse = mx + math.log(sum(math.exp(v - mx) for v in row))
        ours = [v - lse for v in row]
        scale, minlp = struct.unpack_from("<ff", d, off)
        u = struct.unpack_from("<%dH" % n_vocab, d, off + 8); off += 2 * nv
        bl = [scale * x + minlp for x in u]
        kl = sum(math.exp(b) * (b - o) for b, o in zip(bl, ours))
        kl_sum += kl; kl_max = max(kl_max, kl); n += 1
        same += max(range(n_vocab), key=lambda k: u[k]) == max(range(n_vocab), key=lambda k: row[k])
        t = toks[i + 1]; nll_ours -= ours[t]; nll_base -= bl[t]
print(f"{model}: {n} positions, mean KLD {kl_sum/n:.2e}, max KLD {kl_max:.2e}, same top token {same}/{n}, PPL jing {math.exp(nll_ours/n):.4f} llama.cpp {math.exp(nll_base/n):.4f}")
