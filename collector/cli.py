"""The `agent-collector` command."""

from __future__ import annotations

import argparse
import logging
import sys

from collector import __version__
from collector.request_id import RequestIdLogFilter
from collector.settings import SETTINGS, Settings, SettingsError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="agent-collector", description="Collector for AI-agent traces.")
    root.add_argument("--version", action="version", version=__version__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the OTLP receivers, the GATI shim and the read API")
    for setting in SETTINGS:
        serve.add_argument(setting.flag, dest=setting.name, default=None,
                           help=_escape(f"{setting.help} [env {setting.env}, default {setting.default or 'none'}]"))
    init = commands.add_parser("init-store", help="create the DuckLake catalog, tables and views once, "
                               "before the first replica starts (idempotent)")
    for setting in SETTINGS:
        if setting.name in INIT_STORE_SETTINGS:
            init.add_argument(setting.flag, dest=setting.name, default=None,
                              help=f"{setting.help} [env {setting.env}]")
    return root


def _escape(text: str) -> str:
    """argparse %-formats help strings."""
    return text.replace("%", "%%")


INIT_STORE_SETTINGS = ("catalog", "data_path", "log_level")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.load(vars(args))
    except SettingsError as exc:
        print(f"agent-collector: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdLogFilter())
    if args.command == "init-store":
        return init_store(settings)
    from collector.serve import StartupError, serve

    try:
        return serve(settings)
    except StartupError as exc:
        print(f"agent-collector: {exc}", file=sys.stderr)
        return 1


def init_store(settings: Settings) -> int:
    from collector.lake import LakeError, init_store, redact
    from collector.store import schema_sql

    if not settings.catalog:
        print("agent-collector: init-store needs --catalog (AGENT_COLLECTOR_CATALOG)", file=sys.stderr)
        return 2
    try:
        created = init_store(settings.catalog, settings.data_path, schema_sql("ducklake"))
    except LakeError as exc:
        print(f"agent-collector: {exc}", file=sys.stderr)
        return 1
    print(f"DuckLake {redact(settings.catalog)} ready: {', '.join(created)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
