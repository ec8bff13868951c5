"""Cost of an LLM call from the maintained `genai-prices` tables (bundled, works offline).

The library's own `calc_price` takes ~50 µs a call, too slow for every span at ingest rates.
Below a model's first price tier (all of it, for untiered models) the price is linear in each
token bucket, so the per-token coefficients are derived once per (provider, model, day) by asking
the library itself, then applied with float maths; calls past a tier go through the library. `tests/test_pricing.py` checks both paths
against `calc_price` directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from genai_prices import Usage, data_snapshot
from genai_prices.types import TieredPrices

NS_PER_DAY = 86_400 * 10**9
BASIS = 1_000

# OTel `gen_ai.provider.name` / `gen_ai.system` values that differ from genai-prices provider ids.
PROVIDER_ALIASES = {
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}


def price(
    model: str,
    provider: str | None,
    tokens_in: int,
    tokens_out: int,
    cache_read: int,
    cache_write: int,
    start_ns: int,
) -> float | None:
    """USD for one call, or None when the model is unknown. Input tokens include cached ones."""
    day = start_ns // NS_PER_DAY
    coefficients = _coefficients(model, _provider_id(provider), day)
    if coefficients is None:
        return None
    p_in, p_cache_read, p_cache_write, p_out, linear_below = coefficients
    if tokens_in >= linear_below:
        return _library_price(model, _provider_id(provider), tokens_in, tokens_out, cache_read, cache_write, day)
    uncached = max(tokens_in - cache_read - cache_write, 0)
    return uncached * p_in + cache_read * p_cache_read + cache_write * p_cache_write + tokens_out * p_out


@lru_cache(maxsize=256)
def _provider_id(provider: str | None) -> str | None:
    if not provider:
        return None
    key = provider.lower()
    key = PROVIDER_ALIASES.get(key, key)
    known = {p.id for p in data_snapshot.get_snapshot().providers}
    return key if key in known else None


@lru_cache(maxsize=4096)
def _find(model: str, provider_id: str | None):
    snapshot = data_snapshot.get_snapshot()
    for pid in (provider_id, None) if provider_id else (None,):
        try:
            return snapshot.find_provider_model(model, None, pid, None)
        except LookupError:
            continue
    return None


def _when(day: int) -> datetime:
    return datetime.fromtimestamp(day * 86_400 + 43_200, tz=UTC)


def _library_usd(found, usage: Usage, day: int) -> float:
    provider, model_info = found
    return float(model_info.calc_price(usage, provider, genai_request_timestamp=_when(day)).total_price)


@lru_cache(maxsize=16384)
def _coefficients(model: str, provider_id: str | None, day: int):
    found = _find(model, provider_id)
    if found is None:
        return None
    model_price = found[1].get_prices(_when(day))
    thresholds = [
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    ]
    linear_below = min(thresholds, default=float("inf"))
    if linear_below <= BASIS:
        return 0.0, 0.0, 0.0, 0.0, 0
    p_in = _library_usd(found, Usage(input_tokens=BASIS), day) / BASIS
    p_cache_read = _library_usd(found, Usage(input_tokens=BASIS, cache_read_tokens=BASIS), day) / BASIS
    p_cache_write = _library_usd(found, Usage(input_tokens=BASIS, cache_write_tokens=BASIS), day) / BASIS
    p_out = _library_usd(found, Usage(output_tokens=BASIS), day) / BASIS
    return p_in, p_cache_read, p_cache_write, p_out, linear_below


def _library_price(model, provider_id, tokens_in, tokens_out, cache_read, cache_write, day) -> float | None:
    found = _find(model, provider_id)
    if found is None:
        return None
    usage = Usage(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    return _library_usd(found, usage, day)
