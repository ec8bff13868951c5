"""The fast cost path must agree with genai-prices' own `calc_price`, tiers included."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price

from collector import pricing

DAY_NS = 1_763_000_000 * 10**9
WHEN = datetime.fromtimestamp(DAY_NS // 10**9 // 86_400 * 86_400 + 43_200, tz=UTC)

MODELS = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o-2024-08-06", "openai"),
    ("o3-mini", "openai"),
    ("claude-3-5-haiku-20241022", "anthropic"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("gemini-1.5-pro", "google"),
    ("gemini-2.5-pro", "google"),
    ("text-embedding-3-small", "openai"),
]


@pytest.mark.parametrize(("model", "provider"), MODELS)
def test_fast_path_matches_library(model, provider):
    rng = random.Random(model)
    for tokens_in in [0, 1, 999, 5_000, 127_999, 128_001, 199_999, 200_001, 1_000_000] + [
        rng.randrange(1, 300_000) for _ in range(20)
    ]:
        cache_read = rng.randrange(0, tokens_in + 1) // 2
        cache_write = rng.randrange(0, tokens_in - cache_read + 1) // 3
        tokens_out = rng.randrange(0, 5_000)
        usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=cache_read,
                      cache_write_tokens=cache_write)
        expected = float(calc_price(usage, model, provider_id=provider, genai_request_timestamp=WHEN).total_price)
        got = pricing.price(model, provider, tokens_in, tokens_out, cache_read, cache_write, DAY_NS)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), (tokens_in, cache_read, cache_write, tokens_out)


def test_otel_provider_names_are_mapped():
    direct = pricing.price("gemini-1.5-flash", "google", 1000, 100, 0, 0, DAY_NS)
    assert direct is not None
    assert pricing.price("gemini-1.5-flash", "gcp.gemini", 1000, 100, 0, 0, DAY_NS) == direct
    assert pricing.price("gemini-1.5-flash", "some-unknown-provider", 1000, 100, 0, 0, DAY_NS) == direct


def test_unknown_model_has_no_price():
    assert pricing.price("definitely-not-a-model-xyz", "openai", 1000, 100, 0, 0, DAY_NS) is None
