// Tool calling end to end with the official clients: a forced call (tool_choice "required", streamed
// as delta.tool_calls fragments), the tool's answer sent back, then the openai client's runTools
// loop with tool_choice "auto"; a named function; the ollama client's chat with tools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, MODEL } from './helpers.mjs';

const ajv = new Ajv2020({ strict: false });
const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['C', 'F'] } },
  required: ['city', 'unit'], additionalProperties: false,
};
const timeParams = { type: 'object', properties: { tz: { type: 'string', maxLength: 8 } }, required: ['tz'], additionalProperties: false };
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weatherParams } },
  { type: 'function', function: { name: 'get_time', description: 'Time in a time zone', parameters: timeParams } },
];
const PARAMS = { get_weather: weatherParams, get_time: timeParams };
const NO_THINK = { chat_template_kwargs: { enable_thinking: false } };

async function withServer(fn) {
  const s = await startServer(['--model', MODEL, '--ctx-size', '2048']);
  try { await fn(s); } finally { await s.stop(); }
}

test('openai: forced call streamed as fragments, tool result, then runTools with auto', async () => {
  await withServer(async (s) => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    const messages = [{ role: 'user', content: 'What is the weather in Paris, and the time there?' }];
    // 1. tool_choice "required", streamed: reassemble delta.tool_calls by index.
    const calls = [];
    let finish = null, fragments = 0;
    const stream = await client.chat.completions.create({ model: 'm', messages, tools: TOOLS, tool_choice: 'required', parallel_tool_calls: false, stream: true, max_tokens: 400, seed: 7, ...NO_THINK });
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      for (const tc of c.delta?.tool_calls ?? []) {
        fragments++;
        if (!calls[tc.index]) calls[tc.index] = { id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: '' } };
        calls[tc.index].function.arguments += tc.function?.arguments ?? '';
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.ok(calls.length >= 1, 'at least one call');
    assert.ok(fragments > calls.length, `arguments arrive in several fragments (${fragments} for ${calls.length} calls)`);
    for (const call of calls) {
      assert.match(call.id, /^call_/);
      assert.ok(PARAMS[call.function.name], `a known function: ${call.function.name}`);
      const args = JSON.parse(call.function.arguments);
      assert.ok(ajv.validate(PARAMS[call.function.name], args), `${call.function.arguments}: ${JSON.stringify(ajv.errors)}`);
    }
    // 2. The tools' answers go back through the chat template; runTools drives the rest with "auto".
    messages.push({ role: 'assistant', content: null, tool_calls: calls });
    for (const call of calls) messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ ok: true, name: call.function.name }) });
    // The fixture model writes fortunes: its plain answer ends at the first newline (stop).
    const ran = [];
    const runner = client.chat.completions.runTools({
      model: 'm', messages, tool_choice: 'auto', max_tokens: 400, stop: ['\n'], seed: 8, ...NO_THINK,
      tools: TOOLS.map((t) => ({ type: 'function', function: { ...t.function, parse: JSON.parse, function: (a) => { ran.push(a); return 'sunny'; } } })),
    }, { maxChatCompletions: 4 });
    const final = await runner.finalChatCompletion();
    assert.ok(['stop', 'length', 'tool_calls'].includes(final.choices[0].finish_reason));
    assert.ok(runner.messages.length > messages.length, 'the runner added the model\'s turn');
  });
});

test('openai: a named function is the one called, not streamed; tool_choice none offers no tools', async () => {
  await withServer(async (s) => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    const r = await client.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: 'Time in Tokyo?' }], tools: TOOLS, max_tokens: 200, seed: 3, ...NO_THINK,
      tool_choice: { type: 'function', function: { name: 'get_time' } }, parallel_tool_calls: false,
    });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 1);
    assert.equal(m.tool_calls[0].function.name, 'get_time');
    assert.ok(ajv.validate(timeParams, JSON.parse(m.tool_calls[0].function.arguments)));
    const none = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], tools: TOOLS, tool_choice: 'none', max_tokens: 8, ...NO_THINK });
    assert.equal(none.choices[0].message.tool_calls, undefined);
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }),
      (e) => e.status === 400 && /nope/.test(e.message));
  });
});

test('ollama: chat with tools returns tool_calls with arguments as objects, streamed and not', async () => {
  await withServer(async (s) => {
    const ollama = new Ollama({ host: s.url });
    const base = { model: 'm', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: TOOLS, think: false, tool_choice: 'required', parallel_tool_calls: false, options: { num_predict: 400, seed: 5 } };
    const r = await ollama.chat({ ...base, stream: false });
    assert.ok(r.message.tool_calls?.length >= 1, JSON.stringify(r.message));
    for (const c of r.message.tool_calls) {
      assert.equal(typeof c.function.arguments, 'object');
      assert.ok(ajv.validate(PARAMS[c.function.name], c.function.arguments), JSON.stringify(c));
    }
    let streamed = [];
    for await (const part of await ollama.chat({ ...base, stream: true })) streamed = streamed.concat(part.message.tool_calls ?? []);
    assert.ok(streamed.length >= 1);
    assert.equal(typeof streamed[0].function.arguments, 'object');
  });
});
