// Open WebUI's backend, replayed against `jing serve`: the requests its routers send to an
// OpenAI-compatible server and to Ollama (routers/openai.py, routers/ollama.py, routers/tasks.py,
// utils/middleware.py, utils/payload.py), shaped as it sends them (Python's json.dumps, aiohttp's
// headers), and every response field it reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, MODEL } from './helpers.mjs';

// --- Open WebUI's bytes -------------------------------------------------------------------------

// A Python float: json.dumps writes 0.0 where JSON.stringify writes 0.
class PyFloat { constructor(v) { this.v = v; } }
const f = (v) => new PyFloat(v);

// json.dumps(value) with its defaults: ", " and ": " separators, ensure_ascii (\uXXXX escapes,
// astral characters as surrogate pairs), keys in insertion order.
function pyDumps(v) {
  if (v instanceof PyFloat) return Number.isInteger(v.v) ? v.v.toFixed(1) : String(v.v);
  if (Array.isArray(v)) return `[${v.map(pyDumps).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${pyDumps(k)}: ${pyDumps(x)}`).join(', ')}}`;
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return JSON.stringify(v);
}

// One request as aiohttp sends it: Content-Type: application/json on every call (GETs too),
// "Authorization: Bearer KEY" when a key is configured, Python's JSON as the body.
function owui(base, method, path, { body, key, headers = {} } = {}) {
  const url = new URL(path, base);
  const data = body === undefined ? undefined : Buffer.from(pyDumps(body));
  const h = {
    Host: url.host,
    'Content-Type': 'application/json',
    ...(key !== undefined ? { Authorization: `Bearer ${key}` } : {}),
    Accept: '*/*',
    'Accept-Encoding': 'gzip, deflate',
    'User-Agent': 'Python/3.11 aiohttp/3.12.15',
    ...(data ? { 'Content-Length': String(data.length) } : {}),
    ...headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: h }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'] ?? '', text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// aiohttp's r.json() refuses anything but application/json: Open WebUI would then hold a string.
function jsonReply(r, status = 200) {
  assert.equal(r.status, status, r.text);
  assert.match(r.type, /^application\/json\b/);
  return r.json();
}

// SSE as Open WebUI's stream handler reads it: "data: " lines, JSON each, then "data: [DONE]".
function sseEvents(r) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.type, /^text\/event-stream\b/, 'Open WebUI streams only a text/event-stream reply');
  assert.ok(r.text.endsWith('\n\n'), 'events end with a blank line');
  const events = r.text.slice(0, -2).split('\n\n');
  assert.equal(events.at(-1), 'data: [DONE]');
  return events.slice(0, -1).map((e) => {
    assert.ok(e.startsWith('data: ') && !e.includes('\n'), `one data line per event: ${e}`);
    return JSON.parse(e.slice(6));
  });
}

// NDJSON as aiohttp iterates it, a line at a time, each given to json.loads: no blank lines.
function ndjsonLines(r) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.type, /^application\/x-ndjson\b/);
  assert.ok(r.text.endsWith('\n'));
  return r.text.slice(0, -1).split('\n').map((line) => JSON.parse(line));
}

// Fields Open WebUI's convert_ollama_usage_to_openai divides and floors: integers.
function assertOllamaTimings(o) {
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'])
    assert.ok(Number.isInteger(o[k]) && o[k] >= 0, `${k} is a non-negative integer: ${o[k]}`);
  assert.ok(o.eval_count > 0 && o.prompt_eval_count > 0);
}

function assertUsage(u) {
  assert.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0);
  assert.ok(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
}

// What Open WebUI does with /api/ps expires_at: int(datetime.fromisoformat(s).timestamp()).
function pythonTimestamp(t, s) {
  const p = spawnSync('python3', ['-c', 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1]).timestamp()))', s], { encoding: 'utf8' });
  if (p.error) { t.diagnostic(`python3 not available: the datetime.fromisoformat check of '${s}' is skipped`); return null; }
  assert.equal(p.status, 0, `datetime.fromisoformat('${s}') fails: ${p.stderr}`);
  return Number(p.stdout.trim());
}

// --- servers ------------------------------------------------------------------------------------

const SYSTEM = 'You are a helpful assistant. Current date: 2026-11-30 (Monday).';
let store, server, keyed;
before(async () => {
  // The store as `jing pull` leaves it, holding the fixture as "tiny:latest"; and a server with
  // one model and a key, as the llama-server guides start it.
  store = mkdtempSync(join(tmpdir(), 'jing-owui-'));
  const dir = join(store, 'library', 'tiny', 'latest');
  mkdirSync(dir, { recursive: true });
  copyFileSync(MODEL, join(dir, 'tiny.gguf'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'tiny:latest', files: ['tiny.gguf'], quant: 'F16', modified: 1764460800 }));
  server = await startServer(['--ctx-size', '2048', '--parallel', '2'], { env: { JING_MODELS: store } });
  keyed = await startServer(['--model', MODEL, '--alias', 'tiny-r1', '--api-key', 'secret', '--ctx-size', '1024'], { env: { JING_MODELS: store } });
});
after(async () => {
  await server?.stop();
  await keyed?.stop();
  rmSync(store, { recursive: true, force: true });
});

// --- OpenAI side --------------------------------------------------------------------------------

test('GET /v1/models with and without Authorization, as the connection check and the model list send it', async () => {
  // No key configured: send_get_request leaves Authorization out; the chat path sends "Bearer ".
  for (const key of [undefined, '', 'sk-anything']) {
    const list = jsonReply(await owui(server.url, 'GET', '/v1/models', { key }));
    assert.ok(!('error' in list) && Array.isArray(list.data));
    const m = list.data.find((x) => x.id === 'tiny:latest');
    assert.ok(m, 'the store model is listed by id');
    assert.ok(!('name' in m) || typeof m.name === 'string', 'name is a string when present (Open WebUI drops a null one)');
  }
  const denied = await owui(keyed.url, 'GET', '/v1/models');
  assert.equal(denied.status, 401);
  assert.match(denied.type, /^application\/json\b/);
  assert.match(denied.json().error.message, /API Key/i, 'the verify dialog shows error.message');
  const list = jsonReply(await owui(keyed.url, 'GET', '/v1/models', { key: 'secret' }));
  assert.deepEqual(list.data.map((m) => m.id), ['tiny-r1']);
});

test('chat streamed as the chat page sends it: include_usage, params after the messages, usage in the last chunk', async () => {
  // The middleware pops metadata/features/variables/files/tool_ids and appends the params.
  const body = {
    stream: true, model: 'tiny:latest',
    messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: 'Tell me a fortune, s\'il vous plaît ✨🔮' }],
    stream_options: { include_usage: true }, temperature: f(0), seed: 42, max_tokens: 48,
  };
  // With ENABLE_FORWARD_USER_INFO_HEADERS it adds the user's identity (the name URL-quoted).
  const headers = {
    'X-OpenWebUI-User-Name': 'Jos%C3%A9 Garc%C3%ADa', 'X-OpenWebUI-User-Id': '8f14e45f-ceea-467f-a0e6-2b3c4d5e6f70',
    'X-OpenWebUI-User-Email': 'jose@example.org', 'X-OpenWebUI-User-Role': 'admin', 'X-OpenWebUI-Chat-Id': 'c2a9d1a4-6f7e-4b8a-9c0d-1e2f3a4b5c6d',
  };
  const chunks = sseEvents(await owui(server.url, 'POST', '/v1/chat/completions', { body, key: '', headers }));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assertUsage(last.usage);
  assert.ok(last.usage.completion_tokens <= 48, 'max_tokens caps the answer');
  let content = '', reasoning = '', finish = null;
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
    const delta = c.choices[0].delta;
    content += delta.content ?? '';
    reasoning += delta.reasoning_content ?? '';
    finish = c.choices[0].finish_reason ?? finish;
  }
  assert.ok(reasoning.length > 0, 'the R1 template\'s reasoning arrives as delta.reasoning_content');
  assert.ok(!content.includes('<think>') && !content.includes('</think>'));
  assert.equal(finish, last.usage.completion_tokens === 48 ? 'length' : 'stop');
  // Without include_usage no usage chunk is sent.
  const plain = sseEvents(await owui(server.url, 'POST', '/v1/chat/completions', { body: { ...body, stream_options: undefined, max_tokens: 4 } }));
  assert.ok(plain.every((c) => !c.usage && c.choices.length === 1));
});

test('max_tokens and max_completion_tokens both cap a reply', async () => {
  for (const [field, cap] of [['max_tokens', 5], ['max_completion_tokens', 7]]) {
    const body = { model: 'tiny:latest', messages: [{ role: 'user', content: 'Tell me a long story' }], stream: false, [field]: cap };
    const r = jsonReply(await owui(server.url, 'POST', '/v1/chat/completions', { body }));
    assertUsage(r.usage);
    // The fixture reasons at length before it answers: the cap is what ends it.
    assert.equal(r.usage.completion_tokens, cap, `${field} ${cap}`);
    assert.equal(r.choices[0].finish_reason, 'length');
  }
});

test('content as a list of parts: text parts are joined; an image part is a clear 400', async () => {
  const ask = async (content) => jsonReply(await owui(server.url, 'POST', '/v1/chat/completions', {
    body: { model: 'tiny:latest', messages: [{ role: 'user', content }], stream: false, temperature: f(0), max_tokens: 12 },
  }));
  // Builds that mark the last message for prompt caching add cache_control to its text part.
  const joined = await ask([{ type: 'text', text: 'Tell me ' }, { type: 'text', text: 'a fortune', cache_control: { type: 'ephemeral' } }]);
  const whole = await ask('Tell me a fortune');
  assert.equal(joined.usage.prompt_tokens, whole.usage.prompt_tokens, 'the parts make the same prompt');
  assert.equal(joined.choices[0].message.content, whole.choices[0].message.content);
  assert.equal(joined.choices[0].message.reasoning_content, whole.choices[0].message.reasoning_content);

  // A picture attached in the chat page: a text part, then an image_url part with a data URL.
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const image = await owui(server.url, 'POST', '/v1/chat/completions', {
    body: {
      stream: true, model: 'tiny:latest',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }],
      stream_options: { include_usage: true },
    },
  });
  const err = jsonReply(image, 400).error;  // Open WebUI shows error.message
  assert.match(err.message, /image/);
  assert.match(err.message, /text-only/);
  assert.match(err.message, /tiny:latest/, 'names the model');
  // The Ollama side carries the picture in the message's "images".
  const ollama = await owui(server.url, 'POST', '/api/chat', {
    body: { model: 'tiny:latest', messages: [{ role: 'user', content: 'What is in this picture?', images: [png] }], stream: true },
  });
  // Open WebUI's Ollama router raises HTTPException(detail=res["error"]): Ollama's plain text.
  assert.match(jsonReply(ollama, 400).error, /images.*text-only/);
});

// The prompts of routers/tasks.py, shortened; the payloads are its own.
const HISTORY = '<chat_history>\nUSER: Tell me a fortune\nASSISTANT: A quiet week brings good news.\n</chat_history>';
const TASKS = {
  title: `### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n### Output:\nJSON format: { "title": "your concise title here" }\n### Chat History:\n${HISTORY}`,
  tags: `### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history.\n### Output:\nJSON format: { "tags": ["tag1", "tag2"] }\n### Chat History:\n${HISTORY}`,
  follow_ups: `### Task:\nSuggest 3-5 relevant follow-up questions the user might ask next.\n### Output:\nJSON format: { "follow_ups": ["Question 1?", "Question 2?"] }\n### Chat History:\n${HISTORY}`,
};

test('task calls, not streamed: title (max_completion_tokens), tags and follow-ups read choices[0].message', async () => {
  for (const [task, prompt] of Object.entries(TASKS)) {
    const body = { model: 'tiny:latest', messages: [{ role: 'user', content: prompt }], stream: false, ...(task === 'title' ? { max_completion_tokens: 1000 } : {}) };
    const r = jsonReply(await owui(server.url, 'POST', '/v1/chat/completions', { body, key: '' }));
    assert.ok(!('error' in r));
    assert.equal(r.object, 'chat.completion');
    const msg = r.choices[0].message;
    assert.equal(msg.role, 'assistant');
    assert.equal(typeof msg.content, 'string', `${task}: content is a string`);
    assert.ok(!msg.content.includes('<think>'), `${task}: the reasoning is not in the content`);
    assert.ok(typeof msg.reasoning_content === 'string' || msg.reasoning_content === undefined);
    assertUsage(r.usage);
  }
});

test('a task call through Ollama, not streamed: convert_payload_openai_to_ollama leaves model, messages, stream', async () => {
  const r = jsonReply(await owui(server.url, 'POST', '/api/chat', {
    body: { model: 'tiny:latest', messages: [{ role: 'user', content: TASKS.title }], stream: false },
  }));
  // convert_response_ollama_to_openai reads model, message.content/thinking/tool_calls and the counts.
  assert.equal(r.model, 'tiny:latest');
  assert.equal(r.done, true);
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.ok(!r.message.content.includes('<think>'));
  assert.ok(r.message.thinking === undefined || typeof r.message.thinking === 'string');
  assertOllamaTimings(r);
});

// --- Ollama side --------------------------------------------------------------------------------

test('/api/version is dotted numbers; /api/tags entries carry model and name', async () => {
  const { version } = jsonReply(await owui(server.url, 'GET', '/api/version'));
  // get_ollama_versions: tuple(map(int, re.sub(r"^v|-.*", "", version).split(".")))
  const parts = version.replace(/^v|-.*/g, '').split('.');
  assert.ok(parts.length >= 2 && parts.every((p) => /^\d+$/.test(p)), `version '${version}'`);

  const tags = jsonReply(await owui(server.url, 'GET', '/api/tags'));
  assert.ok(tags.models.length > 0);
  for (const m of tags.models) {
    assert.equal(typeof m.model, 'string');
    assert.equal(m.name, m.model);
    assert.match(m.model, /:/, 'a tag, as Open WebUI adds ":latest" to bare names before looking them up');
    // The model pages show the size, the date and details' parameter size and quantization.
    assert.ok(Number.isInteger(m.size) && m.size > 0);
    assert.ok(!Number.isNaN(Date.parse(m.modified_at)), m.modified_at);
    assert.equal(typeof m.digest, 'string');
    assert.equal(typeof m.details.parameter_size, 'string');
    assert.equal(typeof m.details.quantization_level, 'string');
  }
  assert.ok(tags.models.some((m) => m.model === 'tiny:latest'));
  // A model served under a bare alias is listed with ":latest", and answers to that name.
  // The verify dialog shows f"External Error: {res['error']}": Ollama's errors are text.
  const denied = await owui(keyed.url, 'GET', '/api/version');
  assert.equal(denied.status, 401);
  assert.match(denied.json().error, /API Key/i);
  const pinned = jsonReply(await owui(keyed.url, 'GET', '/api/tags', { key: 'secret' }));
  assert.ok(pinned.models.some((m) => m.model === 'tiny-r1:latest'), JSON.stringify(pinned.models.map((m) => m.model)));
});

test('/api/chat as Open WebUI forwards it: every NDJSON line is JSON; names with and without :latest are one model', async () => {
  // convert_payload_openai_to_ollama, then GenerateChatCompletionForm.model_dump(exclude_none=True).
  const body = (model, stream) => ({
    model, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: 'Tell me a fortune 🔮' }],
    options: { temperature: f(0), num_predict: 32, seed: 7 }, stream, think: true,
  });
  const lines = ndjsonLines(await owui(server.url, 'POST', '/api/chat', { body: body('tiny:latest', true) }));
  let thinking = '';
  for (const o of lines) {
    assert.equal(o.model, 'tiny:latest');
    assert.equal(typeof o.created_at, 'string');
    assert.equal(typeof o.message.content, 'string');
    assert.equal(typeof o.done, 'boolean');
    thinking += o.message.thinking ?? '';
  }
  assert.ok(thinking.length > 0, 'thinking arrives as message.thinking');
  const last = lines.at(-1);
  assert.ok(last.done && lines.slice(0, -1).every((o) => !o.done));
  assert.ok(['stop', 'length'].includes(last.done_reason));
  assertOllamaTimings(last);

  // The same model by its bare name, on both APIs, and by its tagged name on the OpenAI side.
  const bare = jsonReply(await owui(server.url, 'POST', '/api/chat', { body: body('tiny', false) }));
  assert.equal(bare.done, true);
  assert.equal(typeof bare.message.content, 'string');
  assertOllamaTimings(bare);
  for (const model of ['tiny', 'tiny:latest']) {
    const r = jsonReply(await owui(server.url, 'POST', '/v1/chat/completions', { body: { model, messages: [{ role: 'user', content: 'Hi' }], stream: false, max_tokens: 4 } }));
    assert.equal(r.model, model);
  }
  const ps = jsonReply(await owui(server.url, 'GET', '/api/ps'));
  assert.deepEqual(ps.models.map((m) => m.model), ['tiny:latest'], 'loaded once, listed once by its store name');
  const missing = await owui(server.url, 'POST', '/api/chat', { body: body('nope:latest', true) });
  assert.equal(missing.status, 404);
  assert.match(missing.type, /^application\/json\b/, 'an error before the stream is JSON, not NDJSON');
  assert.match(missing.json().error, /nope:latest.*not found/);

  // The keyed server's model by the name Open WebUI sends: the alias with ":latest".
  const r = await owui(keyed.url, 'POST', '/api/chat', { key: 'secret', body: { ...body('tiny-r1:latest', false), options: { num_predict: 4 } } });
  assert.equal(jsonReply(r).model, 'tiny-r1:latest');
});

test('/api/ps expires_at parses with Python\'s datetime.fromisoformat; the entries match /api/tags', async (t) => {
  const asked = Math.floor(Date.now() / 1000);
  await owui(server.url, 'POST', '/api/chat', { body: { model: 'tiny:latest', messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 2 }, stream: false, keep_alive: '10m' } });
  const ps = jsonReply(await owui(server.url, 'GET', '/api/ps'));
  const tags = new Set(jsonReply(await owui(server.url, 'GET', '/api/tags')).models.map((m) => m.model));
  assert.equal(ps.models.length, 1);
  for (const m of ps.models) {
    assert.ok(tags.has(m.model), `Open WebUI finds ${m.model} of /api/ps in /api/tags`);
    assert.equal(m.name, m.model);
    assert.ok(Number.isInteger(m.size) && Number.isInteger(m.size_vram), 'sizes for the loaded-models list');
    // jing's addition: the VRAM share per GPU, which sums to size_vram (empty on the CPU).
    assert.ok(Array.isArray(m.gpus) && m.gpus.reduce((sum, g) => sum + g.size_vram, 0) === m.size_vram, `per-GPU shares: ${JSON.stringify(m.gpus)}`);
    // A numeric offset: fromisoformat reads it in every Python 3 (a "Z" only from 3.11 on).
    assert.match(m.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/);
    const ts = pythonTimestamp(t, m.expires_at);
    if (ts !== null) assert.ok(ts >= asked + 590 && ts <= Math.floor(Date.now() / 1000) + 601, `keep_alive 10m: expires at ${ts}, asked at ${asked}`);
  }
  const pinned = jsonReply(await owui(keyed.url, 'GET', '/api/ps', { key: 'secret' }));
  assert.deepEqual(pinned.models.map((m) => m.model), ['tiny-r1:latest']);
  const ts = pythonTimestamp(t, pinned.models[0].expires_at);
  if (ts !== null) assert.ok(ts > asked + 365 * 86400, 'a pinned model expires far ahead');
});

test('Open WebUI\'s unload (generate, empty prompt, keep_alive 0) frees the model', async () => {
  const r = jsonReply(await owui(server.url, 'POST', '/api/generate', { body: { model: 'tiny:latest', keep_alive: 0, prompt: '' } }));
  assert.equal(r.done, true);
  let models = [];
  for (let i = 0; i < 50; i++) {
    models = jsonReply(await owui(server.url, 'GET', '/api/ps')).models;
    if (models.length === 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.deepEqual(models, []);
});
