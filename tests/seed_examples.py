"""The GATI seeds' JSON examples (tests/fixtures/gati/seed_examples.json) and how responses are
compared with them: every key the seed shows must be present with the same value (numbers within
float rounding); extra keys are allowed, as the compatibility contract says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SEED_EXAMPLES = Path(__file__).parent / "fixtures" / "gati" / "seed_examples.json"
EXAMPLES: dict[str, dict] = {
    name: entry for name, entry in json.loads(SEED_EXAMPLES.read_text()).items() if not name.startswith("_")
}


def example(name: str) -> Any:
    return json.loads(json.dumps(EXAMPLES[name]["body"]))


def assert_like_seed(actual: Any, expected: Any, path: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        missing = sorted(expected.keys() - actual.keys())
        assert not missing, f"{path}: missing {missing}"
        for key, value in expected.items():
            assert_like_seed(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, the seed shows {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected)):
            assert_like_seed(got, want, f"{path}[{index}]")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r}"
        assert actual == pytest.approx(expected), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
