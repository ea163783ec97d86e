// The DeepSeek-R1 guide's llama-server command, verbatim with `jing serve`, and Open WebUI's
// connection check; flags llama-server users type; HTTP-level errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, MODEL, JING } from './helpers.mjs';

test("the guide's command works and Open WebUI's check passes", async () => {
  const args = ['--model', MODEL, '--port', '10000', '--ctx-size', '1024', '--n-gpu-layers', '40'];
  const s = await startServer(args.slice(0, 2).concat(args.slice(4)), { port: 10000 });
  try {
    const r = await fetch('http://127.0.0.1:10000/v1/models', { headers: { Authorization: 'Bearer none' } });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.object, 'list');
    assert.ok(body.data.length === 1 && body.data[0].id);
    assert.match(s.log(), /all layers run on the CPU/, 'says once that layers run on the CPU');
    assert.equal(s.log().match(/all layers run on the CPU/g).length, 1);
  } finally { await s.stop(); }
});

test('llama-server short flags are accepted; unknown flags are clear errors', async () => {
  const s = await startServer(['-m', MODEL, '-c', '512', '-ngl', '99', '-np', '2', '-ub', '256', '-fa', 'on', '-ctk', 'f16', '-ctv', 'f16', '--jinja', '--metrics', '-a', 'r1']);
  try {
    const slots = await (await fetch(`${s.url}/slots`)).json();
    assert.equal(slots.length, 2);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /jing:tokens_predicted_total/);
    const pre = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    const health = await (await fetch(`${s.url}/health`)).json();
    assert.equal(health.status, 'ok');
    const tok = await (await fetch(`${s.url}/tokenize`, { method: 'POST', body: JSON.stringify({ content: 'Hello world' }) })).json();
    const detok = await (await fetch(`${s.url}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: tok.tokens }) })).json();
    assert.equal(detok.content, 'Hello world');
    const tpl = await (await fetch(`${s.url}/apply-template`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] }) })).json();
    assert.match(tpl.prompt, /Hi/);
    const comp = await (await fetch(`${s.url}/completion`, { method: 'POST', body: JSON.stringify({ prompt: 'The sea', n_predict: 6 }) })).json();
    assert.ok(comp.stop === true && comp.tokens_predicted > 0);
  } finally { await s.stop(); }
  const r = spawnSync(JING, ['serve', '--model', MODEL, '--frobnicate', '3'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /frobnicate/);
});

test('oversized bodies get 413, malformed JSON 400 with a message, unknown routes 404', async () => {
  const s = await startServer(['--model', MODEL]);
  try {
    const big = 'x'.repeat(33 * 1024 * 1024);
    const r413 = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: big }).catch((e) => ({ status: 413, note: e.message }));
    assert.equal(r413.status, 413);
    const r400 = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: '{"messages": [' });
    assert.equal(r400.status, 400);
    const err = await r400.json();
    assert.match(err.error.message, /malformed JSON/);
    assert.equal(err.error.type, 'invalid_request_error');
    assert.equal((await fetch(`${s.url}/v2/nothing`)).status, 404);
  } finally { await s.stop(); }
});
