// Structured outputs: JSON schemas through the openai client (strict json_schema, streamed and not)
// and the ollama client (format), validated with ajv; GBNF grammars on llama-server's /completion.
// The fixture model is tiny and writes nonsense, which is the point: whatever it wants to say, the
// output must follow the schema. Thinking is off (enable_thinking / think: false) because this model
// rarely closes its reasoning block; the grammar then applies from the first token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, MODEL } from './helpers.mjs';

const ajv = new Ajv2020({ strict: false });
addFormats(ajv);

const str = (extra = {}) => ({ type: 'string', maxLength: 24, ...extra });
const obj = (properties, required = Object.keys(properties)) => ({ type: 'object', properties, required, additionalProperties: false });

// 21 schemas covering every supported keyword.
const SCHEMAS = [
  obj({ name: str(), age: { type: 'integer' } }),
  obj({ ok: { type: 'boolean' }, note: { type: 'null' } }),
  obj({ price: { type: 'number' }, currency: { enum: ['EUR', 'USD', 'CNY'] } }),
  obj({ tags: { type: 'array', items: str({ maxLength: 8 }), minItems: 1, maxItems: 3 } }),
  obj({ kind: { const: 'point' }, x: { type: 'number' }, y: { type: 'number' } }),
  obj({ when: { type: 'string', format: 'date' } }),
  obj({ at: { type: 'string', format: 'date-time' } }),
  obj({ id: { type: 'string', format: 'uuid' } }),
  obj({ t: { type: 'string', format: 'time' } }),
  obj({ a: str(), b: { type: 'integer' }, c: { type: 'boolean' } }, ['b']),  // optional a and c
  obj({ inner: obj({ deep: obj({ v: { type: 'integer' } }) }) }),
  obj({ v: { anyOf: [{ type: 'integer' }, str({ maxLength: 5 }), { type: 'null' }] } }),
  obj({ v: { oneOf: [obj({ cat: str({ maxLength: 6 }) }), obj({ dog: { type: 'integer' } })] } }),
  { type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 4 },
  { type: 'array', prefixItems: [str({ maxLength: 4 }), { type: 'integer' }, { type: 'boolean' }], items: false },
  { $defs: { leaf: obj({ n: { type: 'integer' } }) }, ...obj({ first: { $ref: '#/$defs/leaf' }, second: { $ref: '#/$defs/leaf' } }) },
  { $defs: { tree: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/tree' }, maxItems: 2 } }, required: ['v', 'kids'], additionalProperties: false } }, $ref: '#/$defs/tree' },
  obj({ code: str({ minLength: 3, maxLength: 3 }) }),
  obj({ v: { type: ['integer', 'null'] }, w: { enum: [1, 'two', null, true] } }),
  { title: 'Person', description: 'annotations are ignored', ...obj({ name: { type: 'string', maxLength: 12, description: 'x' }, email: str() }) },
  obj({ code: { type: 'string', pattern: '^[A-Z]{2}-\\d{3}$' }, word: { type: 'string', pattern: '^(?:cat|dog)s?$' } }),
];

const MAX_TOKENS = 400;

async function withServer(fn) {
  const s = await startServer(['--model', MODEL, '--parallel', '4', '--ctx-size', '1024']);
  try { await fn(s); } finally { await s.stop(); }
}

function check(schema, text, finish, label) {
  assert.equal(finish, 'stop', `${label}: the model ended inside ${MAX_TOKENS} tokens: ${text.slice(0, 200)}`);
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(text); }, `${label}: not JSON: ${text.slice(0, 300)}`);
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${label}: ${JSON.stringify(validate.errors)} for ${text.slice(0, 300)}`);
}

test('openai json_schema (strict): 21 schemas, streamed and not, validate with ajv', async () => {
  await withServer(async (s) => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    for (const [i, schema] of SCHEMAS.entries()) {
      const req = {
        model: 'm', messages: [{ role: 'user', content: `Answer in JSON (${i})` }], max_tokens: MAX_TOKENS, seed: i,
        response_format: { type: 'json_schema', json_schema: { name: `s${i}`, strict: true, schema } },
        chat_template_kwargs: { enable_thinking: false },
      };
      for (const stream of [false, true]) {
        let text = '', finish = null;
        if (stream) {
          for await (const chunk of await client.chat.completions.create({ ...req, stream: true })) {
            const c = chunk.choices[0];
            if (c?.delta?.content) text += c.delta.content;
            if (c?.finish_reason) finish = c.finish_reason;
          }
        } else {
          const r = await client.chat.completions.create(req);
          text = r.choices[0].message.content;
          finish = r.choices[0].finish_reason;
        }
        check(schema, text, finish, `schema ${i} ${stream ? 'streamed' : 'whole'}`);
      }
    }
  });
});

test('openai json_object and ollama format (json and schemas) give valid JSON', async () => {
  await withServer(async (s) => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    const r = await client.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: 'JSON please' }], max_tokens: MAX_TOKENS, seed: 3,
      response_format: { type: 'json_object' }, chat_template_kwargs: { enable_thinking: false },
    });
    assert.equal(typeof JSON.parse(r.choices[0].message.content), 'object');

    const ollama = new Ollama({ host: s.url });
    for (const [i, schema] of [SCHEMAS[0], SCHEMAS[3], SCHEMAS[10], SCHEMAS[15]].entries()) {
      const res = await ollama.chat({
        model: 'm', messages: [{ role: 'user', content: 'Tell me' }], format: schema, think: false, stream: false,
        options: { num_predict: MAX_TOKENS, seed: i },
      });
      check(schema, res.message.content, res.done_reason, `ollama chat schema ${i}`);
    }
    let text = '', reason = null;
    for await (const part of await ollama.generate({ model: 'm', prompt: 'Tell me', format: SCHEMAS[2], think: false, stream: true, options: { num_predict: MAX_TOKENS, seed: 5 } })) {
      text += part.response;
      if (part.done) reason = part.done_reason;
    }
    check(SCHEMAS[2], text, reason, 'ollama generate streamed');
    const j = await ollama.generate({ model: 'm', prompt: 'Tell me', format: 'json', think: false, stream: false, options: { num_predict: MAX_TOKENS, seed: 6 } });
    assert.equal(typeof JSON.parse(j.response), 'object');
  });
});

test('GBNF grammars on /completion constrain the output', async () => {
  await withServer(async (s) => {
    const complete = async (grammar, extra = {}) => {
      const r = await fetch(`${s.url}/completion`, {
        method: 'POST', body: JSON.stringify({ prompt: 'Once upon a time', n_predict: 120, seed: 1, grammar, ...extra }),
      });
      assert.equal(r.status, 200, await r.clone().text());
      return (await r.json()).content;
    };
    assert.equal(await complete('root ::= "The answer is 42."'), 'The answer is 42.');  // a fixed string
    assert.match(await complete('root ::= ("yes" | "no") "!"'), /^(yes|no)!$/);
    assert.match(await complete('root ::= [0-9]{3} "-" [0-9]{4}'), /^[0-9]{3}-[0-9]{4}$/);
    assert.match(await complete('root ::= word (" " word){2}\nword ::= [a-z]{1,6}'), /^[a-z]{1,6}( [a-z]{1,6}){2}$/);
    const list = await complete('root ::= "[" item ("," item)* "]"\nitem ::= [A-Z] [a-z]*', { temperature: 0 });
    assert.match(list, /^\[[A-Z][a-z]*(,[A-Z][a-z]*)*\]?/);
  });
});

test('bad grammars and schemas are 400s that say what is wrong', async () => {
  await withServer(async (s) => {
    const post = async (path, body) => {
      const r = await fetch(`${s.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, text: await r.text() };
    };
    const msgs = [{ role: 'user', content: 'x' }];
    let r = await post('/completion', { prompt: 'x', grammar: 'root ::= missing' });
    assert.equal(r.status, 400); assert.match(r.text, /'missing' is used but not defined/);
    r = await post('/completion', { prompt: 'x', grammar: 'root ::= root "a"' });
    assert.equal(r.status, 400); assert.match(r.text, /left-recursive/);
    r = await post('/v1/chat/completions', { messages: msgs, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^(a)\\1$' } } } });
    assert.equal(r.status, 400); assert.match(r.text, /back-reference is not supported/);
    r = await post('/v1/chat/completions', { messages: msgs, response_format: { type: 'xml' } });
    assert.equal(r.status, 400); assert.match(r.text, /unknown response_format type/);
    r = await post('/api/chat', { model: 'm', messages: msgs, format: 42, stream: false });
    assert.equal(r.status, 400); assert.match(r.text, /'format' must be/);
    r = await post('/v1/chat/completions', { messages: msgs, grammar: 'root ::= "a"', response_format: { type: 'json_object' } });
    assert.equal(r.status, 400); assert.match(r.text, /both constrain/);
  });
});

test('a reasoning model thinks first: the grammar applies once </think> closes', async () => {
  await withServer(async (s) => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
    // The template opens <think>; unconstrained reasoning comes first (this model rarely closes it).
    const thinking = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 24, seed: 2, grammar: 'root ::= "ok"' });
    assert.ok(thinking.choices[0].message.reasoning_content.length > 2, 'free reasoning');
    assert.equal(thinking.choices[0].message.content, '');
    // The same with </think> pushed by a logit bias (token 2047 in this vocabulary): then "ok" exactly.
    const closed = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 24, seed: 2,
      grammar: 'root ::= "ok"', logit_bias: { 2047: 100 } });
    assert.equal(closed.choices[0].message.content, 'ok');
    assert.equal(closed.choices[0].finish_reason, 'stop');
  });
});
