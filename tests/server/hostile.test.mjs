// A hostile or careless client against the real `jing serve`: each numbered finding of the
// hardening issue (deep JSON, idle and slowloris sockets, a full queue under streams, huge and
// abandoned chats, filesystem names, web pages and rebound names, over-long embeddings, malformed
// HTTP) as a regression test. Raw sockets speak HTTP by hand where clients would refuse to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startServer, MODEL, FIXTURES } from './helpers.mjs';

const LLAMA = `${FIXTURES}/models/llama-f16.gguf`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends bytes on a fresh socket, optionally half-closes, and collects everything until the server closes
// (or `wait` ms pass).
function raw(url, data, { halfClose = true, wait = 5000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    let out = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(out); }, wait);
    sock.on('data', (d) => { out += d.toString('latin1'); });
    sock.on('close', () => { clearTimeout(timer); resolve(out); });
    sock.on('error', () => {});
    sock.on('connect', () => { sock.write(data); if (halfClose) sock.end(); });
  });
}
const statusOf = (resp) => Number((resp.match(/^HTTP\/1\.[01] (\d{3})/) || [])[1] ?? 0);
const bodyOf = (resp) => resp.slice(resp.indexOf('\r\n\r\n') + 4);

const post = (url, path, body, headers = {}) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

function nested(depth) { return '['.repeat(depth) + ']'.repeat(depth); }

test('1. JSON nested 30,000 deep anywhere in a body is a 400, and the server stays up', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '256']);
  try {
    const deep = nested(30000);
    const bodies = [
      ['/v1/chat/completions', `{"messages":[{"role":"user","content":"hi","extra":${deep}}],"max_tokens":1}`],
      ['/v1/chat/completions', `{"messages":[{"role":"user","content":[{"type":"text","text":"hi","x":${deep}}]}],"max_tokens":1}`],
      ['/v1/chat/completions', `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deep}}}],"max_tokens":1}`],
      ['/api/chat', `{"model":"m","messages":[{"role":"user","content":"hi","extra":${deep}}],"stream":false}`],
      ['/apply-template', `{"messages":[{"role":"user","content":"hi","extra":${deep}}]}`],
    ];
    for (const [path, body] of bodies) {
      const r = await post(s.url, path, body);
      assert.equal(r.status, 400, path);
      const { error } = await r.json();  // Ollama's routes answer {"error": "text"}
      assert.match(path.startsWith('/api/') ? error : error.message, /nests deeper/);
    }
    // 100 levels are still fine.
    const ok = await post(s.url, '/apply-template', `{"messages":[{"role":"user","content":"hi","extra":${nested(100)}}]}`);
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  } finally { await s.stop(); }
});

// Opens n sockets that each do `behave(sock)`; returns them.
function openMany(url, n, behave) {
  const { hostname, port } = new URL(url);
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    sock.on('error', () => {});
    sock.on('connect', () => { behave(sock); resolve(sock); });
    sock.on('close', () => resolve(sock));
  })));
}

function procStatus(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { threads: Number(st.match(/Threads:\s+(\d+)/)[1]), rssMiB: Number(st.match(/VmRSS:\s+(\d+)/)[1]) / 1024 };
}

test('2. 1,000 slowloris sockets and 512 idle keep-alive connections do not starve /health or chat', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '256']);
  const socks = [];
  let stop = false;
  try {
    // Idle keep-alive: one finished request each, then silence.
    const keep = await openMany(s.url, 512, (sock) => sock.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    socks.push(...keep);
    // Slowloris: half a header, then one byte every 3 s; reconnect when the server closes one.
    const slow = async () => {
      while (!stop) {
        const [sock] = await openMany(s.url, 1, (k) => k.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: '));
        socks.push(sock);
        while (!stop && !sock.destroyed && sock.writable) {
          await sleep(3000);
          if (!sock.destroyed && sock.writable) sock.write('a');
        }
        if (!stop) await sleep(100);
      }
    };
    const loris = Array.from({ length: 1000 }, () => slow());
    await sleep(1500);
    let worst = 0, peak = { threads: 0, rssMiB: 0 };
    const t_end = performance.now() + 12000;
    while (performance.now() < t_end) {
      const t0 = performance.now();
      const h = await fetch(`${s.url}/health`);
      assert.equal(h.status, 200);
      const c = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
      assert.equal(c.status, 200);
      await c.json();
      worst = Math.max(worst, performance.now() - t0);
      const ps = procStatus(s.proc.pid);
      peak = { threads: Math.max(peak.threads, ps.threads), rssMiB: Math.max(peak.rssMiB, ps.rssMiB) };
      await sleep(250);
    }
    console.log(`# [hostile] slowloris x1000 + keep-alive x512: worst /health+chat ${worst.toFixed(0)} ms, peak threads ${peak.threads}, peak RSS ${peak.rssMiB.toFixed(0)} MiB`);
    assert.ok(worst < 2000, `answered within 2 s (worst ${worst.toFixed(0)} ms)`);
    assert.ok(peak.threads < 200, `threads stay bounded (${peak.threads})`);
    stop = true;
    await Promise.race([Promise.all(loris), sleep(100)]);
  } finally {
    stop = true;
    for (const k of socks) k.destroy();
    await s.stop();
  }
});

test('2b. an idle connection is closed after --idle-timeout, a half header after --header-timeout (408)', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '256', '--idle-timeout', '1', '--header-timeout', '1']);
  try {
    const t0 = performance.now();
    const idle = await raw(s.url, '', { halfClose: false, wait: 5000 });
    assert.equal(idle, '');
    assert.ok(performance.now() - t0 < 3000, 'idle socket closed by the server');
    const half = await raw(s.url, 'GET /health HTTP/1.1\r\nHost: x', { halfClose: false, wait: 5000 });
    assert.equal(statusOf(half), 408);
  } finally { await s.stop(); }
});

test('3. with a full queue, a stream gets a clean 503 with a JSON body before any header', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '512', '--parallel', '1', '--max-queue', '1']);
  const ctrls = [];
  try {
    const open = async () => {
      const ctrl = new AbortController();
      ctrls.push(ctrl);
      const r = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Tell a story' }], max_tokens: 400, stream: true, temperature: 1 });
      r.body.getReader().read().catch(() => {});
      return r;
    };
    const first = await open();
    assert.equal(first.status, 200);
    const second = await open();  // waits in the queue
    assert.equal(second.status, 200);
    for (const path of ['/v1/chat/completions', '/api/chat']) {
      const body = path === '/api/chat' ? { model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true } : { messages: [{ role: 'user', content: 'x' }], stream: true };
      const r = await post(s.url, path, body);
      assert.equal(r.status, 503, path);
      assert.ok(r.headers.get('retry-after'));
      assert.match(r.headers.get('content-type'), /json/);
      const { error } = await r.json();
      assert.match(path.startsWith('/api/') ? error : error.message, /busy/);
    }
  } finally {
    for (const c of ctrls) c.abort();
    await s.stop();
  }
});

test('4. 100k messages are refused fast; 8k render in linear time; an abandoned request frees its slot within 100 ms', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '4096', '--parallel', '1']);
  try {
    const msgs = (n) => Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i}` }));
    let t0 = performance.now();
    const big = await post(s.url, '/v1/chat/completions', { messages: msgs(100000), max_tokens: 1 });
    assert.equal(big.status, 400);
    assert.ok(performance.now() - t0 < 2000, `refused in ${(performance.now() - t0).toFixed(0)} ms`);
    t0 = performance.now();
    const r8k = await post(s.url, '/apply-template', { messages: msgs(8000) });
    assert.equal(r8k.status, 200);
    const t8k = performance.now() - t0;
    assert.ok(t8k < 1000, `8k messages rendered in ${t8k.toFixed(0)} ms`);

    const slotsBusy = async () => (await (await fetch(`${s.url}/slots`)).json()).some((x) => x.is_processing);
    for (const phase of ['prompt', 'generation']) {
      // ~2,500 prompt tokens keep the slot computing the prompt for a while; the generation case
      // leaves after two chunks.
      const content = phase === 'prompt' ? 'The quick brown fox jumps over the lazy dog. '.repeat(180) : 'Tell a long story';
      const ctrl = new AbortController();
      const req = fetch(`${s.url}/v1/chat/completions`, {
        method: 'POST', signal: ctrl.signal, headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 2000, stream: true, temperature: 1 }),
      }).then(async (r) => {
        assert.equal(r.status, 200);
        const rd = r.body.getReader();
        if (phase === 'generation') { await rd.read(); await rd.read(); }
      }).catch((e) => { if (e.name !== 'AbortError') throw e; });
      if (phase === 'prompt') {
        for (let i = 0; i < 2000 && !(await slotsBusy()); i++) await sleep(1);
      } else {
        await req;
      }
      assert.ok(await slotsBusy(), `the slot is busy during ${phase}`);
      const t = performance.now();
      ctrl.abort();
      let freed = null;
      while (performance.now() - t < 3000) {
        if (!(await slotsBusy())) { freed = performance.now() - t; break; }
        await sleep(2);
      }
      console.log(`# [hostile] slot freed ${freed?.toFixed(0)} ms after the client left during ${phase}`);
      assert.ok(freed !== null && freed < 100, `slot freed within 100 ms after leaving during ${phase} (${freed})`);
    }
  } finally { await s.stop(); }
});

test('4b. SIGTERM with 32 open streams: each ends with its final chunk, the process exits within 5 s', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '4096', '--parallel', '4', '--max-queue', '64']);
  const streams = Array.from({ length: 32 }, () => (async () => {
    const r = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Tell a long story' }], max_tokens: 4000, stream: true, temperature: 1 });
    let text = '';
    const dec = new TextDecoder();
    for await (const part of r.body) text += dec.decode(part, { stream: true });
    return text;
  })());
  await sleep(1500);
  const t0 = performance.now();
  const code = await s.stop('SIGTERM');
  const took = performance.now() - t0;
  const texts = await Promise.all(streams.map((p) => p.catch((e) => `ERROR ${e}`)));
  console.log(`# [hostile] SIGTERM with 32 streams: exit ${code} after ${took.toFixed(0)} ms`);
  assert.ok(took < 5000, `exited in ${took.toFixed(0)} ms`);
  for (const t of texts) {
    assert.match(t, /"finish_reason":"(stop|length)"/, 'final chunk');
    assert.match(t, /data: \[DONE\]\n\n$/, 'stream closed properly');
  }
});

test('5. names resolve through the store only: paths are 404s that reveal nothing; /api/show checks the name', { timeout: 120000 }, async () => {
  const store = `${process.env.TMPDIR ?? '/tmp'}/jing-hostile-store-${process.pid}`;
  const s = await startServer([], { env: { JING_MODELS: store } });
  try {
    for (const name of ['/etc/shadow', '/etc/passwd', LLAMA, '../../etc/hosts', '/nonexistent/x.gguf']) {
      for (const [path, body] of [['/api/show', { model: name }], ['/api/generate', { model: name, prompt: 'x', stream: false }],
        ['/v1/chat/completions', { model: name, messages: [{ role: 'user', content: 'x' }] }]]) {
        const r = await post(s.url, path, body);
        const text = await r.text();
        assert.equal(r.status, 404, `${path} ${name}: ${text}`);
        // The answer may repeat the name it was given, and nothing else about the file.
        assert.doesNotMatch(text.split(name).join(''), /magic|GGUF|permission|No such file|bytes|directory/i, `${path} ${name}: ${text}`);
      }
    }
  } finally { await s.stop(); }
  const p = await startServer(['--model', LLAMA, '-a', 'tiny']);
  try {
    assert.equal((await post(p.url, '/api/show', { model: 'no-such-model' })).status, 404);
    assert.equal((await post(p.url, '/api/show', { model: 'tiny' })).status, 200);
    assert.equal((await post(p.url, '/api/show', { model: 'tiny:latest' })).status, 200);
  } finally { await p.stop(); }
});

test('6. CORS as Ollama: loopback origins only by default; foreign Hosts (DNS rebinding) get 403', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA]);
  try {
    const evil = await fetch(`${s.url}/api/delete`, { method: 'DELETE', headers: { Origin: 'https://evil.example', 'Content-Type': 'application/json' }, body: '{"model":"x"}' });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const pre = await fetch(`${s.url}/api/pull`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 403);
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'app://obsidian.md', 'vscode-webview://abc']) {
      const ok = await fetch(`${s.url}/api/tags`, { headers: { Origin: origin } });
      assert.equal(ok.status, 200, origin);
      assert.equal(ok.headers.get('access-control-allow-origin'), origin);
    }
    assert.equal(statusOf(await raw(s.url, 'GET /api/tags HTTP/1.1\r\nHost: evil.example:11434\r\n\r\n')), 403);
    assert.equal(statusOf(await raw(s.url, 'GET /api/tags HTTP/1.1\r\nHost: 127.attacker.example\r\n\r\n')), 403);
    assert.equal(statusOf(await raw(s.url, 'GET /api/tags HTTP/1.1\r\nHost: localhost:11434\r\n\r\n')), 200);
  } finally { await s.stop(); }
  const open = await startServer(['--model', LLAMA, '--cors-origins', 'https://chat.example.org'], { env: { JING_ALLOWED_HOSTS: 'box.lan' } });
  try {
    const r = await fetch(`${open.url}/api/tags`, { headers: { Origin: 'https://chat.example.org' } });
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://chat.example.org');
    assert.equal(statusOf(await raw(open.url, 'GET /api/tags HTTP/1.1\r\nHost: box.lan:11434\r\n\r\n')), 200);
  } finally { await open.stop(); }
});

test('7. over-long embedding input: /api/embed truncates by default, 400 with truncate false; /v1/embeddings 400', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '64']);
  try {
    const long = 'word '.repeat(400);
    const t = await post(s.url, '/api/embed', { model: 'm', input: long });
    assert.equal(t.status, 200);
    assert.equal((await t.json()).embeddings.length, 1);
    const f = await post(s.url, '/api/embed', { model: 'm', input: long, truncate: false });
    assert.equal(f.status, 400);
    assert.match((await f.json()).error, /context/);
    assert.equal((await post(s.url, '/v1/embeddings', { model: 'm', input: long })).status, 400);
  } finally { await s.stop(); }
});

test('8. malformed HTTP gets 400/413/431/505 with JSON bodies; HEAD, bearer, HTTP/1.0, half-close, unsupported fields', { timeout: 120000 }, async () => {
  const s = await startServer(['--model', LLAMA, '-c', '256', '--api-key', 'sekrit']);
  try {
    const auth = 'Authorization: Bearer sekrit\r\n';
    const cases = [
      ['garbage', '\x16\x03\x01garbage\r\n\r\n', 400],
      ['bad request line', 'GET\r\n\r\n', 400],
      ['header without colon', 'GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', 400],
      ['bad Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n', 400],
      ['conflicting Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400],
      ['Content-Length with Transfer-Encoding', 'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400],
      ['bad chunk size', 'POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 400],
      ['headers over 64 KiB', `GET /health HTTP/1.1\r\nX-Big: ${'a'.repeat(70000)}\r\n\r\n`, 431],
      ['HTTP/2.0 request line', 'GET /health HTTP/2.0\r\n\r\n', 505],
      ['body over the limit', `POST /v1/chat/completions HTTP/1.1\r\n${auth}Content-Length: 99999999999\r\n\r\n{}`, 413],
    ];
    for (const [name, data, want] of cases) {
      const resp = await raw(s.url, data);
      assert.equal(statusOf(resp), want, `${name}: ${resp.slice(0, 120)}`);
      assert.ok(JSON.parse(bodyOf(resp)).error.message, name);
    }
    const head = await fetch(`${s.url}/health`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await head.text()), '');
    const lower = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }, { Authorization: 'bearer sekrit' });
    assert.equal(lower.status, 200);
    // HTTP/1.0: a stream is delimited by the close, not chunked.
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true });
    const old = await raw(s.url, `POST /v1/chat/completions HTTP/1.0\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { halfClose: false });
    assert.equal(statusOf(old), 200);
    assert.doesNotMatch(old.slice(0, old.indexOf('\r\n\r\n')), /chunked/i);
    assert.match(bodyOf(old), /^data: /);
    assert.match(old, /data: \[DONE\]\n\n$/);
    // A request followed by a half-close still gets its answer, plain and generating.
    assert.equal(statusOf(await raw(s.url, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')), 200);
    const nb = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
    const half = await raw(s.url, `POST /v1/chat/completions HTTP/1.1\r\n${auth}Content-Length: ${nb.length}\r\n\r\n${nb}`);
    assert.match(half, /HTTP\/1\.1 200 OK/);
    assert.match(half, /"choices"/);
    // Grammar fields are honoured (a grammar that forces "a" gives "a"); lazy grammars, which this
    // server does not run, are refused rather than ignored.
    const g = await post(s.url, '/completion', { prompt: 'Hi', n_predict: 4, grammar: 'root ::= "a"' }, { Authorization: 'Bearer sekrit' });
    assert.equal(g.status, 200);
    assert.equal((await g.json()).content, 'a');
    const lazy = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, grammar: 'root ::= "a"', grammar_lazy: true }, { Authorization: 'Bearer sekrit' });
    assert.equal(lazy.status, 400);
  } finally { await s.stop(); }
});
