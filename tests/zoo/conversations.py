"""The conversations every zoo template is rendered with: the shapes real chat data has.

Each one is plain `apply_chat_template` input (OpenAI-style dicts), plus the `tools` list where a
conversation calls a tool, as a training script would pass it. Tool-call arguments are a mapping,
as transformers documents them (templates that concatenate them as a string refuse it: a skip).

Example: CONVERSATIONS["cjk"].messages -> [{"role": "user", "content": "你好"},
                                           {"role": "assistant", "content": "我是AI"}]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, Any]]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."}},
            "required": ["city"],
        },
    },
}


@dataclass(frozen=True)
class ZooConversation:
    name: str
    messages: Messages
    tools: list[dict[str, Any]] | None = field(default=None)


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _assistant(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **extra}


_TOOL_TURNS: Messages = [
    _user("What is the weather in Paris?"),
    _assistant(
        "",
        tool_calls=[
            {
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    ),
    {"role": "tool", "content": "Sunny, 22 degrees."},
    _assistant("It is sunny in Paris, 22 degrees."),
]

_ALL = (
    ZooConversation("basic", [_user("Hi"), _assistant("Hello!")]),
    ZooConversation(
        "system",
        [
            {"role": "system", "content": "You are terse."},
            _user("What is the capital of France?"),
            _assistant("Paris."),
        ],
    ),
    ZooConversation(
        "multi_turn",
        [
            {"role": "system", "content": "Answer in one word."},
            _user("Colour of the sky?"),
            _assistant("Blue."),
            _user("And grass?"),
            _assistant("Green."),
            _user("And snow?"),
            _assistant("White."),
        ],
    ),
    ZooConversation(
        "whitespace", [_user("\n  Hello there.  \n"), _assistant("\n  Hello there.  \n")]
    ),
    ZooConversation("cjk", [_user("你好"), _assistant("我是AI")]),
    ZooConversation(
        "role_words",
        [
            _user("Is the word user or assistant?"),
            _assistant("assistant, not user.\nuser: no\nassistant: yes"),
        ],
    ),
    ZooConversation(
        "code",
        [
            _user("Print hello in Python."),
            _assistant('```python\nprint("hello")\n```\n\nRun it with `python hello.py`.'),
        ],
    ),
    ZooConversation("tool_call", _TOOL_TURNS, tools=[WEATHER_TOOL]),
    # The same turns without the tools list: what a dataset without a `tools` column renders.
    ZooConversation("tool_call_no_tools", _TOOL_TURNS),
    ZooConversation(
        "think_inline",
        [
            _user("What is 2+2?"),
            _assistant("<think>\nTwo plus two is four.\n</think>\n\nThe answer is 4."),
        ],
    ),
    ZooConversation(
        "think_field",
        [
            _user("What is 2+2?"),
            _assistant("The answer is 4.", reasoning_content="Two plus two is four."),
        ],
    ),
    # Reasoning on an earlier turn: many templates drop it once a later user turn follows.
    ZooConversation(
        "think_two_turns",
        [
            _user("What is 2+2?"),
            _assistant("4.", reasoning_content="Two plus two is four."),
            _user("And 3+3?"),
            _assistant("6.", reasoning_content="Three plus three is six."),
        ],
    ),
)

CONVERSATIONS: dict[str, ZooConversation] = {c.name: c for c in _ALL}
