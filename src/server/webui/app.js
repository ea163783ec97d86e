// The chat page. Conversations live in localStorage; answers stream from /v1/chat/completions
// (Server-Sent Events) on this same server, and nothing is fetched from anywhere else.
'use strict';

const $ = (id) => document.getElementById(id);
const KEYS = { conversations: 'jing.conversations', current: 'jing.current', settings: 'jing.settings' };
const NUMBERS = ['temperature', 'top_p', 'max_tokens'];

function load(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}

const state = {
  conversations: load(KEYS.conversations, []),
  currentId: localStorage.getItem(KEYS.current) || null,
  settings: { temperature: '', top_p: '', max_tokens: '', system: '', api_key: '', model: '', ...load(KEYS.settings, {}) },
  controller: null,   // the AbortController of the answer being streamed
  views: new WeakMap(),  // answer object -> its element
};

function save() {
  localStorage.setItem(KEYS.conversations, JSON.stringify(state.conversations));
  localStorage.setItem(KEYS.current, state.currentId ?? '');
}

const current = () => state.conversations.find((c) => c.id === state.currentId) ?? null;

// ---- markdown -------------------------------------------------------------------------------

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const safeUrl = (href) => (/^(https?:|mailto:|#)/i.test(href ?? '') ? href : '#');

marked.use({
  gfm: true,
  renderer: {
    // A model's raw HTML is shown as text, never run; images become links (nothing loads by itself).
    html: (token) => escapeHtml(token.text),
    image: (token) => `<a href="${escapeHtml(safeUrl(token.href))}">${escapeHtml(token.text || 'image')}</a>`,
  },
  walkTokens(token) {
    if (token.type === 'link') token.href = safeUrl(token.href);
  },
});

function renderMarkdown(el, text) {
  el.innerHTML = marked.parse(text);
  for (const a of el.querySelectorAll('a')) { a.target = '_blank'; a.rel = 'noopener noreferrer'; }
  for (const pre of el.querySelectorAll('pre')) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = 'Copy';
    pre.append(button);
  }
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {  // no clipboard API (an insecure origin): select and copy
    const area = document.createElement('textarea');
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
}

// ---- rendering ------------------------------------------------------------------------------

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

function statsText(m) {
  if (m.state === 'error') return `Error: ${m.error}`;
  const parts = [];
  const t = m.timings;
  const n = t?.predicted_n ?? m.usage?.completion_tokens;
  if (n != null) parts.push(`${n} tokens`);
  if (t?.predicted_per_second) parts.push(`${t.predicted_per_second.toFixed(1)} tokens/s`);
  else if (n && m.elapsedMs) parts.push(`${(n / (m.elapsedMs / 1000)).toFixed(1)} tokens/s`);
  if (m.state === 'stopped') parts.push('stopped');
  if (m.model) parts.push(m.model);
  return parts.join(' · ');
}

function messageView(m) {
  const el = document.createElement('div');
  el.className = `msg ${m.role}`;
  if (m.role === 'user') {
    const body = document.createElement('div');
    body.className = 'body';
    body.textContent = m.content;
    el.append(body);
    return el;
  }
  el.innerHTML = '<details class="reasoning" hidden><summary></summary><div class="reasoning-text"></div></details>' +
    '<div class="content"></div><div class="stats"></div>';
  const details = el.querySelector('.reasoning');
  details.open = Boolean(m.reasoningOpen);  // stays as the reader left it across redraws
  details.addEventListener('toggle', () => { m.reasoningOpen = details.open; });
  state.views.set(m, el);
  fillAnswer(el, m);
  return el;
}

// Redraws an answer where it is shown (not at all once another conversation is).
function updateAnswer(m) {
  const el = state.views.get(m);
  if (el?.isConnected) fillAnswer(el, m);
}

function fillAnswer(el, m) {
  el.dataset.state = m.state ?? 'done';
  const details = el.querySelector('.reasoning');
  details.hidden = !m.reasoning;
  if (m.reasoning) {
    const thinking = m.state === 'streaming' && m.reasoningMs == null;
    details.querySelector('summary').textContent = thinking
      ? `Thinking… ${seconds(performance.now() - m.thinkStart)}` : `Thought for ${seconds(m.reasoningMs ?? 0)}`;
    details.querySelector('.reasoning-text').textContent = m.reasoning;
  }
  renderMarkdown(el.querySelector('.content'), m.content);
  el.querySelector('.stats').textContent = m.state === 'streaming' ? '' : statsText(m);
}

function renderConversations() {
  const list = $('conversations');
  list.replaceChildren();
  for (const c of [...state.conversations].sort((a, b) => b.updated - a.updated)) {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    li.classList.toggle('current', c.id === state.currentId);
    const title = document.createElement('button');
    title.type = 'button';
    title.className = 'title';
    title.textContent = c.title;
    title.title = c.title;
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'delete';
    del.textContent = '×';
    del.title = 'Delete this conversation';
    li.append(title, del);
    list.append(li);
  }
}

function renderMessages() {
  const box = $('messages');
  box.replaceChildren(...(current()?.messages ?? []).map(messageView));
  box.scrollTop = box.scrollHeight;
}

function render() {
  renderConversations();
  renderMessages();
}

// Deltas arrive faster than frames: redraw the streaming answer at most once a frame, and keep
// it in storage about once a second.
let pending = null, savedAt = 0;
function scheduleUpdate(m) {
  if (pending) return;
  pending = requestAnimationFrame(() => {
    pending = null;
    if (performance.now() - savedAt > 1000) save(), savedAt = performance.now();
    const box = $('messages');
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    updateAnswer(m);
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
}

function showError(text) {
  $('error').textContent = text ?? '';
  $('error').hidden = !text;
}

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  $('new-chat').disabled = busy;
}

// ---- the server -----------------------------------------------------------------------------

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (state.settings.api_key) h.Authorization = `Bearer ${state.settings.api_key}`;
  return h;
}

async function errorText(res) {
  const text = await res.text();
  let message = text;
  try { message = JSON.parse(text).error?.message ?? text; } catch { /* not JSON */ }
  if (res.status === 401) message += ' (set the API key in Settings)';
  return `${res.status}: ${message}`;
}

async function loadModels() {
  const select = $('model');
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    if (!res.ok) throw new Error(await errorText(res));
    const ids = (await res.json()).data.map((m) => m.id);
    select.replaceChildren(...ids.map((id) => new Option(id, id)));
    if (ids.includes(state.settings.model)) select.value = state.settings.model;
    if (!ids.length) showError('No models: start the server with --model FILE.gguf, or pull one with `jing pull`.');
  } catch (e) {
    showError(`Could not list the models: ${e.message}`);
  }
}

// Yields each JSON event of a Server-Sent Events body until [DONE].
async function* events(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        yield JSON.parse(data);
      }
    }
  }
}

function requestBody(conv, model) {
  const s = state.settings;
  const messages = [];
  if (s.system.trim()) messages.push({ role: 'system', content: s.system });
  for (const m of conv.messages) {
    if (m.role === 'assistant' && (m.state === 'error' || m.state === 'streaming')) continue;
    messages.push({ role: m.role, content: m.content });
  }
  const body = { model, messages, stream: true, stream_options: { include_usage: true } };
  for (const k of NUMBERS) if (s[k] !== '' && s[k] != null) body[k] = Number(s[k]);
  return body;
}

async function send(text) {
  let conv = current();
  if (!conv) {
    conv = { id: crypto.randomUUID(), title: 'New chat', messages: [], updated: Date.now() };
    state.conversations.push(conv);
    state.currentId = conv.id;
  }
  if (!conv.messages.length) conv.title = text.slice(0, 60);
  const model = $('model').value;
  conv.messages.push({ role: 'user', content: text });
  const body = requestBody(conv, model);
  const answer = { role: 'assistant', content: '', reasoning: '', model, state: 'streaming' };
  conv.messages.push(answer);
  conv.updated = Date.now();
  save();
  render();
  showError('');
  setBusy(true);
  const controller = new AbortController();
  state.controller = controller;
  const started = performance.now();
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) throw new Error(await errorText(res));
    for await (const ev of events(res)) {
      if (ev.error) throw new Error(ev.error.message);
      const delta = ev.choices?.[0]?.delta;
      if (delta?.reasoning_content) {
        answer.thinkStart ??= performance.now();
        answer.reasoning += delta.reasoning_content;
      }
      if (delta?.content) {
        if (answer.reasoning && answer.reasoningMs == null) answer.reasoningMs = performance.now() - answer.thinkStart;
        answer.content += delta.content;
      }
      if (ev.usage) answer.usage = ev.usage;
      if (ev.timings) answer.timings = ev.timings;
      scheduleUpdate(answer);
    }
    answer.state = 'done';
  } catch (e) {
    if (e.name === 'AbortError') {
      answer.state = 'stopped';
    } else {
      answer.state = 'error';
      answer.error = e.message;
    }
  } finally {
    if (answer.reasoning && answer.reasoningMs == null) answer.reasoningMs = performance.now() - answer.thinkStart;
    delete answer.thinkStart;
    answer.elapsedMs = performance.now() - started;
    state.controller = null;
    setBusy(false);
    conv.updated = Date.now();
    save();
    updateAnswer(answer);
  }
}

// ---- settings -------------------------------------------------------------------------------

const FIELDS = [...NUMBERS, 'system', 'api_key'];

function openSettings() {
  for (const k of FIELDS) $(k).value = state.settings[k] ?? '';
  $('settings').showModal();
}

$('settings').addEventListener('close', () => {
  if ($('settings').returnValue !== 'save') return;
  for (const k of FIELDS) state.settings[k] = $(k).value;
  localStorage.setItem(KEYS.settings, JSON.stringify(state.settings));
  loadModels();
});

// ---- events ---------------------------------------------------------------------------------

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('prompt').value.trim();
  if (!text || state.controller) return;
  if (!$('model').value) return showError('Pick a model first.');
  $('prompt').value = '';
  send(text);
});

$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});

// Aborting the fetch closes the connection; the server sees it and frees the slot.
$('stop').addEventListener('click', () => state.controller?.abort());

$('new-chat').addEventListener('click', () => {
  state.currentId = null;
  save();
  render();
  $('prompt').focus();
});

$('conversations').addEventListener('click', (e) => {
  const li = e.target.closest('li');
  if (!li || state.controller) return;
  if (e.target.classList.contains('delete')) {
    state.conversations = state.conversations.filter((c) => c.id !== li.dataset.id);
    if (state.currentId === li.dataset.id) state.currentId = null;
  } else {
    state.currentId = li.dataset.id;
  }
  save();
  render();
});

$('messages').addEventListener('click', async (e) => {
  if (!e.target.classList.contains('copy')) return;
  await copyText(e.target.closest('pre').querySelector('code')?.textContent ?? '');
  e.target.textContent = 'Copied';
  setTimeout(() => { e.target.textContent = 'Copy'; }, 1500);
});

$('model').addEventListener('change', () => {
  state.settings.model = $('model').value;
  localStorage.setItem(KEYS.settings, JSON.stringify(state.settings));
});

$('open-settings').addEventListener('click', openSettings);

// An answer that was streaming when the page went away was cut short.
for (const c of state.conversations)
  for (const m of c.messages) if (m.state === 'streaming') m.state = 'stopped';
render();
loadModels();
