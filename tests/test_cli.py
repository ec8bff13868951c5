"""The command line: `serve --help` renders every setting; list and number settings parse or name
the bad value."""

from __future__ import annotations

import pytest

from collector.cli import parser
from collector.settings import SETTINGS, Settings, SettingsError


def test_serve_help_renders_every_setting(capsys):
    with pytest.raises(SystemExit) as done:
        parser().parse_args(["serve", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for setting in SETTINGS:
        assert setting.flag in text and setting.env in text


def test_api_keys_are_a_comma_separated_set_kept_out_of_repr():
    settings = Settings.load({}, {"AGENT_COLLECTOR_API_KEYS": " k1 ,k2,, k1"})
    assert settings.api_keys == frozenset({"k1", "k2"})
    assert "k1" not in repr(settings)
    assert Settings.load({}, {}).api_keys == frozenset()


@pytest.mark.parametrize("raw", ["fast", "-1", "nan", "inf"])
def test_rates_and_timeouts_must_be_finite_non_negative_numbers(raw):
    with pytest.raises(SettingsError, match=f"AGENT_COLLECTOR_INGEST_RATE_LIMIT={raw!r}"):
        Settings.load({}, {"AGENT_COLLECTOR_INGEST_RATE_LIMIT": raw})
    assert Settings.load({"request_timeout": "2.5"}, {}).request_timeout == 2.5
