#!/usr/bin/env python3
"""Renders chat templates with Python's jinja2, configured as Hugging Face transformers does it, as the
reference for Jing's engine (tests/chat/wild_templates_test.cpp).

Usage: render_jinja2.py [--generation] OUT.json CONVERSATIONS.json TEMPLATE.jinja...

For every template x conversation x add_generation_prompt it records the rendering or the error raised.
Conversations whose tool calls carry their arguments as a JSON string (as OpenAI clients send them) are
rendered twice: as sent ("as_sent") and with those strings parsed into objects ("object_arguments").
Templates jinja2 itself cannot compile are listed under "unparsable". Exits 77 when jinja2 is missing.
--generation also accepts transformers' {% generation %}...{% endgeneration %} block (which marks the
assistant's tokens for training masks), rendering its body unchanged.
"""
import copy
import datetime
import json
import os
import sys

try:
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("python3-jinja2 is not installed", file=sys.stderr)
    sys.exit(77)

BOS, EOS = "<s>", "</s>"


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}body{% endgeneration %} renders body, as transformers does outside training."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def make_env(generation):
    extensions = [loopcontrols] + ([GenerationBlock] if generation else [])
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=extensions)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def with_object_arguments(messages):
    """The messages with every tool call's string arguments parsed as JSON objects; None if none are strings."""
    out = copy.deepcopy(messages)
    changed = False
    for m in out:
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                try:
                    parsed = json.loads(fn["arguments"])
                except ValueError:
                    continue
                if isinstance(parsed, dict):
                    fn["arguments"] = parsed
                    changed = True
    return out if changed else None


def render(tmpl, messages, tools, add_generation_prompt):
    # As transformers' apply_chat_template: tools and documents are always passed (None when absent).
    try:
        return {"rendered": tmpl.render(messages=messages, tools=tools, documents=None,
                                        add_generation_prompt=add_generation_prompt,
                                        bos_token=BOS, eos_token=EOS)}
    except Exception as e:  # any exception a template raises is an error Jing must raise too
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    args = sys.argv[1:]
    generation = "--generation" in args
    args = [a for a in args if a != "--generation"]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_path, conv_path, templates = args[0], args[1], args[2:]
    with open(conv_path, encoding="utf-8") as f:
        conversations = json.load(f)
    env = make_env(generation)
    result = {"jinja2": jinja2.__version__, "bos_token": BOS, "eos_token": EOS, "templates": {}, "unparsable": {}}
    for path in templates:
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        try:
            tmpl = env.from_string(source)
        except jinja2.exceptions.TemplateSyntaxError as e:
            result["unparsable"][name] = f"line {e.lineno}: {e.message}"
            continue
        cases = []
        for conv in conversations:
            variants = [("as_sent", conv["messages"])]
            parsed = with_object_arguments(conv["messages"])
            if parsed is not None:
                variants.append(("object_arguments", parsed))
            for agp in (False, True):
                case = {"conversation": conv["name"], "add_generation_prompt": agp}
                for label, messages in variants:
                    case[label] = render(tmpl, messages, conv.get("tools"), agp)
                cases.append(case)
        result["templates"][name] = cases
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
