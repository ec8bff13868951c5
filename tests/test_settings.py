"""One settings table: flags beat environment variables beat defaults; README documents each one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.settings import SETTINGS, Settings, SettingsError

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_defaults_are_the_interface_contract():
    settings = Settings.load({}, {})
    assert (settings.db, settings.host, settings.grpc_port, settings.http_port, settings.api_port) == (
        "./agent-collector.duckdb", "127.0.0.1", 4317, 4318, 8000)


def test_flag_beats_environment_beats_default():
    env = {"AGENT_COLLECTOR_GRPC_PORT": "5317", "AGENT_COLLECTOR_DB": "/tmp/env.duckdb"}
    settings = Settings.load({"grpc_port": "6317"}, env)
    assert settings.grpc_port == 6317
    assert settings.db == "/tmp/env.duckdb"
    assert settings.http_port == 4318


@pytest.mark.parametrize(("env", "message"), [
    ({"AGENT_COLLECTOR_API_PORT": "eighty"}, "AGENT_COLLECTOR_API_PORT='eighty'"),
    ({"AGENT_COLLECTOR_HTTP_PORT": "70000"}, "AGENT_COLLECTOR_HTTP_PORT='70000'"),
    ({"AGENT_COLLECTOR_HOST": ""}, "AGENT_COLLECTOR_HOST"),
])
def test_bad_values_name_the_variable_and_value(env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.load({}, env)


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_every_setting_is_documented_in_readme(setting):
    row = next((line for line in README.splitlines() if f"`{setting.env}`" in line), None)
    assert row is not None, f"README has no row for {setting.env}"
    assert f"`{setting.flag}`" in row
