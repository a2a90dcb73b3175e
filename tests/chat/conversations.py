"""Conversations the chat-template tests render: with and without system, multi-turn, assistant prefill,
tools and tool calls (arguments as objects and as JSON strings), tool results, reasoning, awkward text."""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city & region",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius",
                         "description": "Temperature unit"},
                "days": {"type": "integer", "minimum": 1, "maximum": 14, "description": "Forecast length"},
            },
            "required": ["location"],
        },
    },
}

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the knowledge base — returns snippets",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Query text"},
                "filters": {
                    "type": "object",
                    "description": "Optional filters",
                    "properties": {
                        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags to match"},
                        "after": {"type": "string", "format": "date", "description": "Only after this date"},
                    },
                },
                "limit": {"type": ["integer", "null"], "examples": [5, 10], "description": "Max results"},
                "score": {"type": "number", "description": "Minimum score", "default": 0.5},
            },
            "required": ["query"],
        },
    },
}

NO_ARGS_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "description": "Current time",
                 "parameters": {"type": "object", "properties": {}, "required": []}},
}

TOOLS = [WEATHER_TOOL, SEARCH_TOOL, NO_ARGS_TOOL]

AWKWARD_TEXT = ("Quotes ' \" and backslash \\ and <html> & entities; tabs\tand\nnewlines\n\n"
                "unicode: café, 中文, العربية, हिन्दी, emoji 👩‍👩‍👧 👍🏽, zero-width\u200b, nbsp\u00a0end  ")

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def _call(name, arguments, call_id, as_string):
    import json
    args = json.dumps(arguments) if as_string else arguments
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def _tool_turns(as_string, with_content):
    call = _call("get_weather", {"location": "Paris", "unit": "celsius", "days": 3, "ratio": 0.1,
                                 "tiny": 1e-07, "big": 1e16, "flag": True, "none": None, "list": [1, 2.5, "x"]},
                 "call12345", as_string)
    return [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "Let me check." if with_content else None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
         "content": "{\"temperature\": 21, \"condition\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 21°C and sunny in Paris."},
        {"role": "user", "content": "Thanks!"},
    ]


def _parallel_calls(as_string):
    return [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            _call("get_weather", {"location": "Paris"}, "callAAAAA", as_string),
            _call("get_weather", {"location": "Rome", "unit": "fahrenheit"}, "callBBBBB", as_string)]},
        {"role": "tool", "tool_call_id": "callAAAAA", "content": "18 degrees"},
        {"role": "tool", "tool_call_id": "callBBBBB", "content": "75 degrees"},
    ]


# name -> (messages, tools, extra kwargs)
CASES = {
    "single_user": ([{"role": "user", "content": "Hello!"}], None, {}),
    "system_user": ([SYSTEM, {"role": "user", "content": "Hello!"}], None, {}),
    "multi_turn_system": ([SYSTEM,
                           {"role": "user", "content": "Hi there"},
                           {"role": "assistant", "content": "Hello! How can I help?"},
                           {"role": "user", "content": "What's 2+2?"},
                           {"role": "assistant", "content": "4"},
                           {"role": "user", "content": "And 3+3?"}], None, {}),
    "multi_turn_no_system": ([{"role": "user", "content": "  Padded question?  "},
                              {"role": "assistant", "content": "\nPadded answer.\n"},
                              {"role": "user", "content": "Next"}], None, {}),
    "assistant_prefill": ([{"role": "user", "content": "Write a haiku."},
                           {"role": "assistant", "content": "Autumn moonlight"}], None, {}),
    "awkward_text": ([{"role": "system", "content": AWKWARD_TEXT},
                      {"role": "user", "content": AWKWARD_TEXT},
                      {"role": "assistant", "content": AWKWARD_TEXT},
                      {"role": "user", "content": "{{ not a template }} {% neither %}"}], None, {}),
    "reasoning": ([{"role": "user", "content": "Think first."},
                   {"role": "assistant", "content": "<think>\nSome reasoning.\n</think>\n\nThe answer."},
                   {"role": "user", "content": "Again?"}], None, {}),
    "tools_user": ([{"role": "user", "content": "What's the weather?"}], TOOLS, {}),
    "tools_system_user": ([SYSTEM, {"role": "user", "content": "Search for cats."}], TOOLS, {}),
    "tool_calls_dict_args": (_tool_turns(False, True), TOOLS, {}),
    "tool_calls_string_args": (_tool_turns(True, True), TOOLS, {}),
    "tool_calls_null_content": (_tool_turns(True, False), TOOLS, {}),
    "parallel_calls_dict": (_parallel_calls(False), TOOLS, {}),
    "parallel_calls_string": (_parallel_calls(True), TOOLS, {}),
    "tool_calls_without_tools": (_tool_turns(False, False), None, {}),
    "empty": ([], None, {}),
    "unknown_role": ([{"role": "narrator", "content": "Once upon a time"}], None, {}),
    "system_only": ([SYSTEM], None, {}),
    "non_string_content": ([{"role": "user", "content": [{"type": "text", "text": "part one"}]}], None, {}),
}

# Extra variables for templates that read them (chosen by the names a template mentions).
KWARG_VARIANTS = {
    "enable_thinking": [{"enable_thinking": True}, {"enable_thinking": False}],
    "builtin_tools": [{"builtin_tools": ["brave_search", "wolfram_alpha"]}],
    "tools_in_user_message": [{"tools_in_user_message": False}],
    "date_string": [{"date_string": "01 Jan 2025"}],
    "enable_citations": [{"enable_citations": True}],
    "documents": [{"documents": [{"title": "Doc <1>", "text": "Cats purr."}, {"title": "Doc 2", "text": "Dogs bark."}]}],
    "functions": [{"functions": "[]", "datetime": "2025-01-01"}],
}
