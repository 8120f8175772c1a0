"""A tool-use conversation in OpenAI's format, shared by the engine, API and CLI tests.

Example: TOOL_CALL_TURNS[1]["tool_calls"][0]["function"] -> {"name": "get_weather", ...}
"""

from __future__ import annotations

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
# user, assistant (reasoning + a tool call), tool result, assistant (reasoning + answer)
TOOL_CALL_TURNS = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "reasoning_content": "I should call the tool.",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temp": 18}'},
    {"role": "assistant", "reasoning_content": "It is mild.", "content": "It is 18 °C."},
]
