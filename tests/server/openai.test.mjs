// The official openai package against `jing serve`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, MODEL } from './helpers.mjs';

let server, client;
before(async () => {
  server = await startServer(['--model', MODEL, '--ctx-size', '1024', '--parallel', '2', '--alias', 'tiny-r1']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none' });
});
after(async () => { assert.equal(await server.stop(), 0, 'graceful shutdown exits 0'); });

test('models lists the served model', async () => {
  const list = await client.models.list();
  assert.ok(list.data.some((m) => m.id === 'tiny-r1'));
});

test('chat completion, not streamed, carries reasoning_content and usage', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: 'Tell me a fortune' }], max_tokens: 48, temperature: 0, seed: 1,
  });
  const m = r.choices[0].message;
  assert.equal(m.role, 'assistant');
  assert.equal(typeof m.content, 'string');
  assert.ok(typeof m.reasoning_content === 'string' && m.reasoning_content.length > 0, 'R1-style reasoning is split out');
  assert.ok(!m.content.includes('<think>') && !m.content.includes('</think>'));
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat completion streamed: reasoning_content deltas, then [DONE] with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: 'Tell me a fortune' }], max_tokens: 40, stream: true,
    stream_options: { include_usage: true }, temperature: 0,
  });
  let reasoning = '', content = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      reasoning += c.delta?.reasoning_content ?? '';
      content += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.ok(reasoning.length > 0, 'reasoning_content deltas arrive');
  assert.ok(finish === 'stop' || finish === 'length');
  assert.ok(usage && usage.completion_tokens > 0);
  // Same request, not streamed, same seed: the same text.
  const whole = await client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: 'Tell me a fortune' }], max_tokens: 40, temperature: 0,
  });
  assert.equal(whole.choices[0].message.reasoning_content ?? '', reasoning);
  assert.equal(whole.choices[0].message.content, content);
});

test('legacy completions and embeddings', async () => {
  const c = await client.completions.create({ model: 'tiny-r1', prompt: 'The moon', max_tokens: 8, temperature: 0 });
  assert.equal(typeof c.choices[0].text, 'string');
  assert.ok(c.choices[0].text.length > 0);
  const e = await client.embeddings.create({ model: 'tiny-r1', input: ['a fortune', 'a poem'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, 256);
  const norm = Math.hypot(...e.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-3, 'embeddings are normalized');
  assert.notDeepEqual(e.data[0].embedding, e.data[1].embedding);
});

test('logprobs, stop strings and bad requests', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, logprobs: true, top_logprobs: 3, temperature: 0,
  });
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length > 0 && lp[0].top_logprobs.length === 3);
  assert.ok(lp[0].logprob <= 0 && lp[0].top_logprobs[0].logprob >= lp[0].top_logprobs[2].logprob);
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-r1', messages: 'nope' }),
    (e) => e.status === 400 && /messages/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-r1', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }),
    (e) => e.status === 400 && /response_format/.test(e.message));
});

test('a wrong API key gets 401', async () => {
  const keyed = await startServer(['--model', MODEL, '--api-key', 'secret', '--api-key', 'other']);
  try {
    const bad = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong' });
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
    const good = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'other' });
    assert.ok((await good.models.list()).data.length === 1);
    assert.equal((await fetch(`${keyed.url}/health`)).status, 200, '/health needs no key');
  } finally { await keyed.stop(); }
});
