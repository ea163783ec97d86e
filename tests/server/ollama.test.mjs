// The official ollama package against `jing serve` (models loaded by name from the store).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ollama } from 'ollama';
import { startServer, MODEL } from './helpers.mjs';

let server, ollama, store;
before(async () => {
  // A store holding the fixture model as "tiny:latest" (the layout `jing pull` writes).
  store = mkdtempSync(join(tmpdir(), 'jing-store-'));
  const dir = join(store, 'library', 'tiny', 'latest');
  mkdirSync(dir, { recursive: true });
  copyFileSync(MODEL, join(dir, 'tiny.gguf'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'tiny:latest', files: ['tiny.gguf'], quant: 'F16', modified: 1 }));
  process.env.JING_MODELS = store;
  server = await startServer(['--ctx-size', '1024']);
  ollama = new Ollama({ host: server.url });
});
after(async () => { await server.stop(); rmSync(store, { recursive: true, force: true }); });

test('tags lists the store', async () => {
  const t = await ollama.list();
  const m = t.models.find((x) => x.name === 'tiny:latest');
  assert.ok(m, 'tiny:latest is listed');
  assert.equal(m.details.family, 'qwen2');
});

test('chat streamed with thinking', async () => {
  const stream = await ollama.chat({ model: 'tiny:latest', messages: [{ role: 'user', content: 'Tell me a fortune' }], stream: true, think: true, options: { num_predict: 40, temperature: 0 } });
  let thinking = '', content = '', last;
  for await (const part of stream) { thinking += part.message.thinking ?? ''; content += part.message.content; last = part; }
  assert.ok(thinking.length > 0, 'thinking arrives in its own field');
  assert.equal(last.done, true);
  assert.ok(last.eval_count > 0 && last.prompt_eval_count > 0 && last.total_duration > 0 && last.eval_duration > 0);
});

test('generate streamed with thinking', async () => {
  const stream = await ollama.generate({ model: 'tiny:latest', prompt: 'Tell me a fortune', stream: true, think: true, options: { num_predict: 30, temperature: 0 } });
  let thinking = '', n = 0, last;
  for await (const part of stream) { thinking += part.thinking ?? ''; n++; last = part; }
  // Parts may carry several tokens each (queued tokens go out together), so count tokens, not parts.
  assert.ok(n >= 2 && thinking.length > 0 && last.eval_count > 2);
  assert.equal(last.done, true);
  assert.ok(['stop', 'length'].includes(last.done_reason));
});

test('show and ps describe the loaded model', async () => {
  const s = await ollama.show({ model: 'tiny:latest' });
  assert.equal(s.details.family, 'qwen2');
  assert.ok(s.template.length > 0);
  assert.equal(s.model_info['general.architecture'], 'qwen2');
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'tiny:latest'));
});

test('embed, copy and delete', async () => {
  const e = await ollama.embed({ model: 'tiny:latest', input: ['hello', 'world'] });
  assert.equal(e.embeddings.length, 2);
  await ollama.copy({ source: 'tiny:latest', destination: 'tiny2:v1' });
  assert.ok((await ollama.list()).models.some((m) => m.name === 'tiny2:v1'));
  await ollama.delete({ model: 'tiny2:v1' });
  assert.ok(!(await ollama.list()).models.some((m) => m.name === 'tiny2:v1'));
  await assert.rejects(ollama.chat({ model: 'missing:7b', messages: [{ role: 'user', content: 'x' }] }), (e) => e.status_code === 404);
});
