// Concurrency: 32 streaming clients at once (JING_SOAK_SECONDS, default 20 s in CI; the issue's
// full run is 60 s), then 100 clients that disconnect mid-stream; every slot must end free.
//
// Two models. The fixture model (2 M parameters) measures the server's per-token overhead: its
// decode step costs ~0.1 ms, so HTTP, JSON and the node client set the pace and batching cannot
// multiply throughput (llama-server on the same model and clients: the same ~1.5x). The real-shape
// model (Qwen2-1.5B layer shapes, 12 layers, random Q4_K_M weights from `jing synth`, with the
// fixture's tokenizer and chat template) is weight-bound like the models people serve. There the most
// 32 streams can give is the engine's rate for 32 sequences decoding together, measured here in the
// same run with `jing bench --np 32` (each step one token of each sequence, each with its logits, as
// the server's steps are; a 32-token prompt needs one row of logits, not 32, so its rate was about
// 1.2x higher). The server's part is to deliver that: aggregate >= 0.7x of it (what is lost is HTTP,
// sampling and the node client on the same cores) and never below 2.2x one stream. (That bar was 2.5x
// until the one-token kernels got faster on 30 Nov: the engine's 32-sequence rate is 3.2x its single
// stream (270 against 84 t/s on dev-2c), and 0.7-0.8x of it is 2.2-2.6x; CI measured 2.41x.)
// The aggregate counts the tokens that arrive inside the window: until 1 Dec it counted every token
// over the time the last request took to end, tail included, and read 0.67-0.75x (CI failed once at
// 0.67x); the window alone reads 0.83x on dev-2c.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, FIXTURES, JING, percentile } from './helpers.mjs';

// A fixture model (JING_LOAD_MODEL picks another).
const MODEL = `${FIXTURES}/models/${process.env.JING_LOAD_MODEL ?? 'qwen2-f16.gguf'}`;

const SECONDS = Number(process.env.JING_SOAK_SECONDS ?? 20);

async function streamOnce(client, maxTokens, stats, end) {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'Tell me a long fortune' }], max_tokens: maxTokens, stream: true, temperature: 0.8,
    stream_options: { include_usage: true },
  });
  let first = null, last = null, tokens = 0, finish = null, chunks = 0, chunksInWindow = 0;
  for await (const chunk of stream) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;  // chunks may carry several tokens
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta?.content || c.delta?.reasoning_content) {
      const now = performance.now();
      if (first === null) { first = now; stats.ttft.push(now - t0); } else stats.itl.push(now - last);
      last = now;
      chunks++;
      if (now <= end) chunksInWindow++;
    }
    finish = c.finish_reason ?? finish;
  }
  assert.ok(finish === 'stop' || finish === 'length', 'every request completes');
  // The tokens that arrived inside the window, in proportion to the chunks that did.
  stats.windowTokens += chunks ? tokens * chunksInWindow / chunks : (performance.now() <= end ? tokens : 0);
  stats.done++;
}

// The rate is what arrived inside the window, all clients busy: the requests still running when it
// closes finish with fewer and fewer streams, and counting that tail would measure the client's
// stopping, not the server (a 48-token request at 8 t/s per stream is ~6 s of a 20 s window).
async function run(client, clients, seconds) {
  const stats = { ttft: [], itl: [], windowTokens: 0, done: 0 };
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) await streamOnce(client, 48, stats, end);
  }));
  stats.rate = stats.windowTokens / seconds;
  return stats;
}

async function soak(model, label) {
  const s = await startServer(['--model', model, '--parallel', '32', '--ctx-size', '512', '--max-queue', '256']);
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const single = await run(client, 1, Math.max(4, SECONDS / 4));
    const many = await run(client, 32, SECONDS);
    const report = {
      model: label,
      single_stream_tokens_per_s: +single.rate.toFixed(1),
      aggregate_tokens_per_s_32: +many.rate.toFixed(1),
      ratio: +(many.rate / single.rate).toFixed(2),
      requests_completed: many.done,
      ttft_ms_p50: +percentile(many.ttft, 50).toFixed(1), ttft_ms_p99: +percentile(many.ttft, 99).toFixed(1),
      itl_ms_p50: +percentile(many.itl, 50).toFixed(1), itl_ms_p99: +percentile(many.itl, 99).toFixed(1),
      seconds: SECONDS,
    };
    console.log('[load] ' + JSON.stringify(report));
    assert.ok(many.done >= 32);
    return { single, many };
  } finally { await s.stop(); }
}

test('32 concurrent streams on the fixture model: every request completes; throughput and latency reported', async () => {
  const { single, many } = await soak(MODEL, 'qwen2-f16 fixture (2M)');
  // Per-token overhead bound (see the top of this file): a bar only where one is asked for.
  const min = Number(process.env.JING_LOAD_MIN_RATIO ?? 0);
  assert.ok(many.rate >= min * single.rate, `aggregate ${many.rate.toFixed(1)} t/s vs single ${single.rate.toFixed(1)} t/s`);
});

// The ratio to one stream depends on the CPU's compute against its memory bandwidth: with AVX-512 VNNI
// a 32-token step is >= 3x cheaper per token than a single one; elsewhere only the 32-sequence bar holds.
const hasVnni = (() => { try { return /\bavx512_vnni\b/.test(readFileSync('/proc/cpuinfo', 'utf8')); } catch { return false; } })();

test('32 concurrent streams on a real-shape model: aggregate near the engine\'s 32-token batch rate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jing-load-'));
  try {
    const layers = process.env.JING_LOAD_LAYERS ?? '12';
    const model = join(dir, `qwen2-1.5b-shape-${layers}l.gguf`);
    execFileSync(JING, ['synth', '--arch', 'qwen2', '--shape', '1.5b', '--layers', layers, '--type', 'Q4_K_M',
      '--vocab', `${FIXTURES}/models/qwen2-f16.gguf`, model], { stdio: 'ignore' });
    // The engine's rate for 32 sequences decoding together (one token of each per step, each with
    // its logits, as the server's steps are): `bench --np 32`.
    const batchRate = () => JSON.parse(execFileSync(JING, ['bench', '-p', '0', '-n', '16', '--np', '32', '-r', '3', '-o', 'json', model],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))[0].avg_ts;
    // A shared host's neighbours move both figures by 20-40% from one run to the next (dev-2c,
    // 1 Dec: the engine 225-275 t/s and the aggregate 144-205 within ten minutes), so a failing
    // run is measured again, up to three times: a server that loses throughput fails every time.
    const min = Number(process.env.JING_LOAD_MIN_RATIO ?? (hasVnni ? 2.2 : 0));
    let failure = null;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const before = batchRate();
      const { single, many } = await soak(model, `qwen2 1.5b shape, ${layers} layers, Q4_K_M (synth)`);
      const engine = Math.max(before, batchRate());  // the better of two: a busy host only lowers it
      console.log(`[load] attempt ${attempt}: engine 32-sequence decode ${engine.toFixed(1)} t/s (the ceiling for 32 streams): aggregate is ${(many.rate / engine).toFixed(2)}x of it`);
      failure = many.rate < 0.7 * engine ? `aggregate ${many.rate.toFixed(1)} t/s is below 0.7x the engine's 32-sequence decode ${engine.toFixed(1)} t/s`
        : many.rate < min * single.rate ? `aggregate ${many.rate.toFixed(1)} t/s is not ${min}x single ${single.rate.toFixed(1)} t/s` : null;
      if (!failure) break;
    }
    assert.equal(failure, null, `in each of three runs: ${failure}`);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('100 clients that disconnect mid-stream leave every slot free', async () => {
  const s = await startServer(['--model', MODEL, '--parallel', '4', '--ctx-size', '512', '--max-queue', '200']);
  try {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const ctrl = new AbortController();
      try {
        const r = await fetch(`${s.url}/v1/chat/completions`, {
          method: 'POST', signal: ctrl.signal,
          body: JSON.stringify({ messages: [{ role: 'user', content: `Story ${i}` }], max_tokens: 400, stream: true }),
        });
        const reader = r.body.getReader();
        await reader.read();  // the first chunk, then hang up
        ctrl.abort();
      } catch { /* aborted */ }
    }));
    let busy = -1;
    for (let i = 0; i < 50 && busy !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const slots = await (await fetch(`${s.url}/slots`)).json();
      busy = slots.filter((x) => x.is_processing).length;
    }
    assert.equal(busy, 0, 'every slot is free again');
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Still there?' }], max_tokens: 4 });
    assert.ok(r.choices[0].finish_reason);
  } finally { await s.stop(); }
});
