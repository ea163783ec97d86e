// The chat page at "/": its HTTP answers, then the page itself in Debian's chromium driven by
// puppeteer-core (skipped with a message when chromium is missing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startServer, MODEL } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const LONG = 8000;  // max_tokens of the answer that gets stopped

let server;
before(async () => {
  server = await startServer(['--model', MODEL, '--ctx-size', '8192', '--parallel', '1', '--alias', 'tiny-r1']);
});
after(async () => { assert.equal(await server.stop(), 0, 'graceful shutdown exits 0'); });

const html = { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

test('browsers get the page at "/", with a same-origin CSP and an ETag', async () => {
  const r = await fetch(`${server.url}/`, { headers: html });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = r.headers.get('content-security-policy');
  for (const d of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(d), `CSP has ${d}: ${csp}`);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.match(r.headers.get('vary'), /Accept/);
  const body = await r.text();
  assert.match(body, /<script src="\/webui\/app\.js"/);
  const etag = r.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{24}"$/);
  const again = await fetch(`${server.url}/`, { headers: { ...html, 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal(await again.text(), '');
  const changed = await fetch(`${server.url}/`, { headers: { ...html, 'If-None-Match': '"0000"' } });
  assert.equal(changed.status, 200);
});

test('Ollama clients probing "/" still get the plain text', async () => {
  for (const accept of ['application/json', '*/*', '']) {
    const r = await fetch(`${server.url}/`, { headers: accept ? { Accept: accept } : {} });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(await r.text(), 'Jing is running');
  }
  const head = await fetch(`${server.url}/`, { method: 'HEAD', headers: { Accept: 'application/json' } });
  assert.equal(head.status, 200);
});

test('the page\'s files are served with their types; unknown ones are 404', async () => {
  const types = { 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8',
    'vendor/marked.min.js': 'text/javascript; charset=utf-8', 'icon.svg': 'image/svg+xml',
    'vendor/marked.LICENSE.md': 'text/plain; charset=utf-8', 'index.html': 'text/html; charset=utf-8' };
  for (const [file, type] of Object.entries(types)) {
    const r = await fetch(`${server.url}/webui/${file}`);
    assert.equal(r.status, 200, file);
    assert.equal(r.headers.get('content-type'), type, file);
    assert.ok((await r.arrayBuffer()).byteLength > 100, file);
  }
  assert.equal((await fetch(`${server.url}/webui/missing.js`)).status, 404);
});

test('with --api-key the page loads without a key and its API calls need one; --no-webui leaves the text', async () => {
  const keyed = await startServer(['--model', MODEL, '--ctx-size', '256', '--parallel', '1', '--api-key', 'sekrit']);
  try {
    assert.equal((await fetch(`${keyed.url}/`, { headers: html })).headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal((await fetch(`${keyed.url}/webui/app.js`)).status, 200);
    assert.equal((await fetch(`${keyed.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${keyed.url}/v1/models`, { headers: { Authorization: 'Bearer sekrit' } })).status, 200);
  } finally {
    assert.equal(await keyed.stop(), 0);
  }
  const off = await startServer(['--model', MODEL, '--ctx-size', '256', '--parallel', '1', '--no-webui']);
  try {
    const r = await fetch(`${off.url}/`, { headers: html });
    assert.equal(await r.text(), 'Jing is running');
    assert.equal((await fetch(`${off.url}/webui/app.js`)).status, 404);
  } finally {
    assert.equal(await off.stop(), 0);
  }
});

test('a streamed chat ends with usage and llama-server\'s timings', async () => {
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 16, stream: true, stream_options: { include_usage: true } }),
  });
  const events = (await r.text()).split('\n\n').filter((b) => b.startsWith('data: {')).map((b) => JSON.parse(b.slice(6)));
  const last = events.at(-1);
  assert.ok(last.usage && last.timings, 'the usage chunk carries timings');
  assert.equal(last.timings.predicted_n, last.usage.completion_tokens);
  assert.ok(last.timings.predicted_per_second > 0);
});

const slots = async () => (await fetch(`${server.url}/slots`)).json();

test('the chat page in chromium: streams, shows reasoning, stops, keeps conversations, stays on 127.0.0.1', { skip: !CHROMIUM && 'chromium is not installed (apt-get install chromium)', timeout: 180000 }, async (t) => {
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions'],
  });
  try {
    const page = await browser.newPage();
    const seen = [], outside = [], problems = [];
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      const u = new URL(req.url());
      if (u.protocol === 'data:') return req.continue();
      seen.push(req.url());
      if (u.hostname !== '127.0.0.1') { outside.push(req.url()); return req.abort(); }
      req.continue();
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

    await page.goto(`${server.url}/`, { waitUntil: 'load' });
    await page.waitForSelector('#model option[value="tiny-r1"]', { timeout: 10000 });

    const settings = async (values) => {
      await page.click('#open-settings');
      for (const [id, v] of Object.entries(values)) {
        await page.$eval(`#${id}`, (el) => { el.value = ''; });
        await page.type(`#${id}`, String(v));
      }
      await page.click('#save-settings');
    };
    await settings({ temperature: 0, max_tokens: 120 });

    // Record the length of each text the streaming answer shows.
    await page.evaluate(() => {
      window.shown = [];
      new MutationObserver(() => {
        const a = document.querySelector('.msg.assistant:last-child');
        if (a?.dataset.state === 'streaming') window.shown.push(a.querySelector('.reasoning-text').textContent.length + a.querySelector('.content').textContent.length);
      }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.type('#prompt', 'Tell me a fortune');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.msg.assistant[data-state="done"]', { timeout: 60000 });

    const first = await page.$eval('.msg.assistant', (el) => ({
      reasoning: el.querySelector('.reasoning-text').textContent, content: el.querySelector('.content').innerHTML,
      summary: el.querySelector('summary').textContent, hidden: el.querySelector('.reasoning').hidden,
      open: el.querySelector('.reasoning').open, stats: el.querySelector('.stats').textContent,
    }));
    assert.ok(first.reasoning.length > 0 && !first.hidden, 'R1\'s reasoning has its block');
    assert.match(first.summary, /^Thought for \d+\.\d s$/);
    assert.match(first.stats, /^\d+ tokens · \d+\.\d tokens\/s · tiny-r1$/, 'tokens/s from the timings');
    assert.equal(first.open, false, 'the reasoning starts collapsed');
    await page.click('.msg.assistant .reasoning summary');
    const expanded = await page.$eval('.msg.assistant .reasoning', (d) => ({ open: d.open, height: d.querySelector('.reasoning-text').offsetHeight }));
    assert.ok(expanded.open && expanded.height > 0, 'the reasoning expands');

    // A long answer, stopped: the connection closes and the server frees the slot.
    await settings({ max_tokens: LONG });
    await page.evaluate(() => { window.shown = []; });
    await page.type('#prompt', 'Write a long story');
    await page.keyboard.press('Enter');
    // Tokens stream in: the answer shows several growing texts before it ends.
    await page.waitForFunction(() => new Set(window.shown.filter((n) => n > 0)).size >= 3, { timeout: 30000 });
    assert.ok((await slots()).some((s) => s.is_processing), 'the answer is being generated');
    assert.equal(await page.$eval('#stop', (b) => b.hidden), false, 'the stop button shows while streaming');
    await page.click('#stop');
    await page.waitForSelector('.msg.assistant:last-child[data-state="stopped"]', { timeout: 5000 });
    const t0 = Date.now();
    let s = await slots();
    while (s.some((x) => x.is_processing) && Date.now() - t0 < 3000) {
      await new Promise((r) => setTimeout(r, 50));
      s = await slots();
    }
    assert.ok(!s.some((x) => x.is_processing), `the slot is freed after stop: ${JSON.stringify(s)}`);
    assert.ok(s[0].n_decoded < LONG, `generation stopped early (${s[0].n_decoded} tokens)`);
    t.diagnostic(`stopped after ${s[0].n_decoded} of ${LONG} tokens; slot free ${Date.now() - t0} ms after the page stopped`);
    assert.match(await page.$eval('.msg.assistant:last-child .stats', (e) => e.textContent), /stopped/);
    // WEBUI_SHOTS=DIR keeps screenshots to look at.
    if (process.env.WEBUI_SHOTS) await page.screenshot({ path: `${process.env.WEBUI_SHOTS}/stopped.png` });
    const stoppedText = await page.$eval('.msg.assistant:last-child', (e) => e.querySelector('.reasoning-text').textContent + e.querySelector('.content').textContent);

    // Reload: the conversation comes back from localStorage.
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('.msg.assistant');
    const after = await page.evaluate(() => ({
      titles: [...document.querySelectorAll('#conversations .title')].map((b) => b.textContent),
      users: [...document.querySelectorAll('.msg.user')].map((m) => m.textContent),
      answers: [...document.querySelectorAll('.msg.assistant')].map((e) => ({ state: e.dataset.state, open: e.querySelector('.reasoning').open,
        reasoning: e.querySelector('.reasoning-text').textContent, content: e.querySelector('.content').innerHTML,
        text: e.querySelector('.reasoning-text').textContent + e.querySelector('.content').textContent })),
    }));
    assert.deepEqual(after.titles, ['Tell me a fortune']);
    assert.deepEqual(after.users, ['Tell me a fortune', 'Write a long story']);
    assert.equal(after.answers.length, 2);
    assert.equal(after.answers[0].reasoning, first.reasoning);
    assert.equal(after.answers[0].content, first.content);
    assert.equal(after.answers[0].open, true, 'the expanded reasoning stays expanded');
    assert.equal(after.answers[1].state, 'stopped');
    assert.equal(after.answers[1].text, stoppedText);

    // Markdown: code blocks get a copy button; a model's raw HTML and script links stay inert.
    await page.evaluate(() => {
      const conv = { id: 'md', title: 'Markdown', updated: Date.now() + 1000, messages: [
        { role: 'user', content: 'code?' },
        { role: 'assistant', state: 'done', reasoning: '', content: '**bold**\n\n```js\nlet x = 1;\n```\n\n<img src=x onerror="window.pwned=1">\n\n[link](javascript:window.pwned=2)' }] };
      localStorage.setItem('jing.conversations', JSON.stringify([...JSON.parse(localStorage.getItem('jing.conversations')), conv]));
      localStorage.setItem('jing.current', 'md');
    });
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('.msg.assistant pre button.copy');
    const md = await page.$eval('.msg.assistant .content', (el) => ({ strong: el.querySelector('strong')?.textContent,
      code: el.querySelector('pre code').textContent, imgs: el.querySelectorAll('img').length, text: el.textContent,
      href: el.querySelector('p a')?.getAttribute('href') }));
    assert.equal(md.strong, 'bold');
    assert.equal(md.code, 'let x = 1;\n');
    assert.equal(md.imgs, 0, 'raw HTML is shown as text');
    assert.ok(md.text.includes('<img src=x'));
    assert.equal(md.href, '#', 'javascript: links are dropped');
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    // Headless chromium has no system clipboard to read back: watch what the page writes to it.
    await page.evaluate(() => Object.defineProperty(navigator.clipboard, 'writeText', { value: async (t) => { window.copied = t; } }));
    await page.click('.msg.assistant pre button.copy');
    assert.equal(await page.evaluate(() => window.copied), 'let x = 1;\n');
    assert.equal(await page.$eval('.msg.assistant pre button.copy', (b) => b.textContent), 'Copied');

    assert.deepEqual(outside, [], 'no request leaves 127.0.0.1');
    assert.ok(seen.some((u) => u.endsWith('/v1/chat/completions')) && seen.some((u) => u.endsWith('/webui/vendor/marked.min.js')), 'requests were watched');
    assert.deepEqual(problems, [], 'no script errors or CSP violations');
  } finally {
    await browser.close();
  }
});
