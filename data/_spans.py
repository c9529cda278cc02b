"""Turn conversation plans into format-neutral spans and trace-level feedback.

A span here is a plain dict (ids, kind, times in integer milliseconds, text,
LLM messages, tool arguments, documents, error); ``data/generate.py`` writes
the same spans once as OTLP/OpenInference and once as Langfuse observations.
"""

from __future__ import annotations

import random
import string

import _phrases as P
from _scenario import Call, Turn, dumps

MODEL = "gpt-4o-mini"
PRICE_PROMPT, PRICE_COMPLETION = 0.15e-6, 0.60e-6  # USD per token
TOOLS_OVERHEAD_TOKENS = 412  # tool JSON schemas sent with every call
APP_VERSION = {"v1": "1.4.0", "v2": "1.5.0"}


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _call_id(rng: random.Random) -> str:
    return "call_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))


def _messages_tokens(messages: list[dict]) -> int:
    total = 0
    for m in messages:
        total += 4 + _tokens(m.get("content") or "")
        for tc in m.get("tool_calls", ()):
            total += 8 + _tokens(tc["function"]["arguments"])
    return total


def _call_result_text(call: Call) -> str:
    if call.error:
        return f"{call.error[0]}: {call.error[1]}"
    if call.retrieval:
        return dumps([{"id": d["id"], "content": d["content"]} for d in call.result])
    return dumps(call.result)


class SpanFactory:
    """Allocates ids and times for the spans of one trace."""

    def __init__(self, rng: random.Random, turn: Turn, trace_id: str):
        self.rng, self.turn, self.trace_id = rng, turn, trace_id
        self.spans: list[dict] = []
        self.clock = int(turn.start_s * 1000)

    def new(self, kind: str, name: str, parent: str | None, duration_ms: int, **fields) -> dict:
        span = {"span_id": f"{self.rng.getrandbits(64):016x}", "parent_id": parent, "kind": kind, "name": name,
                "start_ms": self.clock, "end_ms": self.clock + duration_ms, "status": "OK"} | fields
        self.clock = span["end_ms"] + self.rng.randrange(1, 6)
        self.spans.append(span)
        return span


def build_trace(rng: random.Random, turn: Turn) -> dict:
    """Spans and feedback of one turn (earlier turns of the session are their own traces)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    f = SpanFactory(rng, turn, trace_id)
    root = f.new("AGENT", "support-agent", None, 0, input=turn.user_text, output=turn.answer)
    f.clock = root["start_ms"] + rng.randrange(2, 9)
    if turn.channel == "email" or rng.random() < 0.1:  # inbound email is moderated first
        f.new("GUARDRAIL", "input_moderation", root["span_id"], rng.randrange(35, 160), input=turn.user_text,
              output=dumps({"flagged": False}))
    messages = [{"role": "system", "content": P.SYSTEM_PROMPT[turn.version]}]
    messages.append({"role": "user", "content": turn.user_text})
    for calls in turn.rounds:
        tool_calls = [{"id": _call_id(rng), "type": "function",
                       "function": {"name": c.name, "arguments": dumps(c.args)}} for c in calls]
        out = {"role": "assistant", "content": "", "tool_calls": tool_calls}
        _llm_span(f, root, messages, out)
        messages = messages + [out]
        for call, tc in zip(calls, tool_calls, strict=True):
            _call_span(f, root, call)
            messages.append({"role": "tool", "tool_call_id": tc["id"], "content": _call_result_text(call)})
    _llm_span(f, root, messages, {"role": "assistant", "content": turn.answer})
    root["end_ms"] = f.clock + rng.randrange(1, 5)
    return {"trace_id": trace_id, "turn": turn, "spans": f.spans, "feedback": _feedback(rng, turn)}


def _llm_span(f: SpanFactory, root: dict, messages: list[dict], out: dict) -> None:
    prompt = TOOLS_OVERHEAD_TOKENS + _messages_tokens(messages)
    completion = _messages_tokens([out]) - 3
    duration = 280 + 14 * completion + prompt // 8 + f.rng.randrange(0, 400)
    f.new("LLM", "ChatCompletion", root["span_id"], duration, messages_in=messages, message_out=out,
          tokens_prompt=prompt, tokens_completion=completion,
          cost_prompt=round(prompt * PRICE_PROMPT, 8), cost_completion=round(completion * PRICE_COMPLETION, 8),
          output=out["content"] or None)


def _call_span(f: SpanFactory, root: dict, call: Call) -> None:
    args = dumps(call.args)
    if call.retrieval:
        f.new("RETRIEVER", call.name, root["span_id"], f.rng.randrange(70, 320), input=call.args["query"],
              documents=call.result, output=dumps([{"id": d["id"], "score": d["score"]} for d in call.result]))
        return
    if call.error and call.error[0] == "TimeoutError":
        duration = 5000 + f.rng.randrange(0, 30)
    else:
        duration = f.rng.randrange(15, 90) if call.error else f.rng.randrange(60, 900)
    span = f.new("TOOL", call.name, root["span_id"], duration, input=args, tool_args=args,
                 output=None if call.error else dumps(call.result))
    if call.error:
        etype, message = call.error
        span["status"] = "ERROR"
        span["status_message"] = f"{etype}: {message}"
        span["exception"] = {
            "type": etype, "message": message,
            "stacktrace": (f'Traceback (most recent call last):\n  File "support_agent/tools.py", line '
                           f'{f.rng.randrange(40, 400)}, in {call.name}\n    raise {etype}(msg)\n{etype}: {message}'),
            "time_ms": span["end_ms"] - 1,
        }


def _feedback(rng: random.Random, turn: Turn) -> list[dict]:
    """Trace-level feedback: code outcome, an imperfect LLM judge, and sometimes user thumbs."""
    ok = turn.failure_mode == "none"
    resolved = ok if rng.random() >= 0.03 else not ok
    judged_pass = rng.random() < 0.85 if ok else rng.random() >= 0.90
    items = [
        {"name": "resolved", "score": float(resolved), "label": "resolved" if resolved else "unresolved",
         "explanation": None, "kind": "CODE"},
        {"name": "judge_pass", "score": float(judged_pass), "label": "pass" if judged_pass else "fail",
         "explanation": None if judged_pass else P.JUDGE_FAIL_NOTES[turn.failure_mode],
         "kind": "LLM"},
    ]
    if rng.random() < (0.11 if ok else 0.35):
        up = rng.random() < (0.88 if ok else 0.15)
        comment = rng.choice(P.USER_COMMENTS_UP if up else P.USER_COMMENTS_DOWN)
        items.append({"name": "user_feedback", "score": float(up), "label": "thumbs_up" if up else "thumbs_down",
                      "explanation": comment or None, "kind": "HUMAN"})
    return items
