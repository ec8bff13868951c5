"""The `agent-collector` command."""

from __future__ import annotations

import argparse
import logging
import sys

from collector import __version__
from collector.settings import SETTINGS, Settings, SettingsError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="agent-collector", description="Collector for AI-agent traces.")
    root.add_argument("--version", action="version", version=__version__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the OTLP receivers, the GATI shim and the read API")
    for setting in SETTINGS:
        serve.add_argument(setting.flag, dest=setting.name, default=None,
                           help=f"{setting.help} [env {setting.env}, default {setting.default}]")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.load(vars(args))
    except SettingsError as exc:
        print(f"agent-collector: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    from collector.serve import StartupError, serve

    try:
        return serve(settings)
    except StartupError as exc:
        print(f"agent-collector: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
