"""The API's nesting measure agrees with the decoded structure, whatever strings hold."""

from __future__ import annotations

import json
import random

import pytest

from taskq_api.json_depth import MAX_JSON_DEPTH, TooDeeplyNestedError, check_depth, nesting_depth

# Characters that could fool a bracket counter: brackets, quotes and backslashes in strings.
TRICKY = ["[", "]", "{", "}", '"', "\\", "n", "\n", "\u00e9", "\x00", "\\u005b"]


def decoded_depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((decoded_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((decoded_depth(item) for item in value.values()), default=0)
    return 0


def random_value(rng: random.Random, depth: int) -> object:
    if depth > 6 or rng.random() < 0.3:
        return "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 6)))
    if rng.random() < 0.5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        str(random_value(rng, 7)): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))
    }


def test_depth_matches_the_decoded_structure() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        value = random_value(rng, 0)
        body = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        assert nesting_depth(body) == decoded_depth(value), body


@pytest.mark.parametrize(
    "body",
    [
        b'"' + b"[" * 500 + b'"',
        b'["\\"' + b"[" * 500 + b'"]',
        b'{"k\\\\": "' + b"{" * 500 + b'"}',
        b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
    ],
)
def test_brackets_in_strings_and_the_limit_itself_pass(body: bytes) -> None:
    check_depth(body)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b'{"a": ' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
        b"[" * 5000,  # unterminated: refused for depth before the decoder sees it
    ],
)
def test_deeper_than_the_limit_is_refused(body: bytes) -> None:
    with pytest.raises(TooDeeplyNestedError, match="nested too deeply"):
        check_depth(body)
