"""Example conversations offered by the editors: each shows one thing a template does to text.

Design concession: plain data in code rather than a JSON file, so a typo fails at import and the
route tests can load every example through the real renderer.
"""

from __future__ import annotations

from typing import Any

GO_REVERSE = (
    "func reverse(s string) string {\n"
    "\tr := []rune(s)\n"
    "\tfor i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {\n"
    "\t\tr[i], r[j] = r[j], r[i]\n"
    "\t}\n"
    "\treturn string(r)\n"
    "}"
)

EXAMPLES: dict[str, dict[str, Any]] = {
    "hello": {
        "title": "你好 / 我是AI (two turns, multi-byte text)",
        "messages": [
            {"role": "user", "content": "你好"},
            {"role": "assistant", "content": "我是AI"},
        ],
    },
    "multi_turn": {
        "title": "Multi-turn chat with a system prompt",
        "messages": [
            {"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is Paris."},
            {"role": "user", "content": "And of Italy?"},
            {"role": "assistant", "content": "The capital of Italy is Rome."},
        ],
    },
    "code": {
        "title": "Code answer (newlines, indentation, tabs)",
        "messages": [
            {
                "role": "user",
                "content": "Reverse a string in Go, keeping multi-byte characters whole.",
            },
            {
                "role": "assistant",
                "content": f"Work on runes, not bytes:\n\n```go\n{GO_REVERSE}\n```",
            },
        ],
    },
    "tool_use": {
        "title": "Tool call with reasoning (Qwen3)",
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "reasoning_content": "The user wants live weather: call the tool.",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "get_weather",
                "content": '{"temp_c": 18, "sky": "clear"}',
            },
            {
                "role": "assistant",
                "reasoning_content": "18 °C and clear.",
                "content": "It is 18 °C and clear in Paris.",
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
    },
}

DEFAULT_EXAMPLE = "multi_turn"


def example_messages(name: str = DEFAULT_EXAMPLE) -> list[dict[str, Any]]:
    """A fresh copy of one example's messages (callers may edit it)."""
    return [dict(m) for m in EXAMPLES[name]["messages"]]
