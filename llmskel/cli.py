"""The ``llmskel`` command.

Subcommands are registered by the module that owns them (``register(subparsers)`` in
``llmskel/data/commands.py``, ``llmskel/engine/commands.py``, ...), so each area keeps its command
line next to its code. Every subcommand that reports results accepts ``--json`` and then prints
exactly one JSON object on stdout (logs and progress bars go to stderr).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Any

# modules that define ``register(subparsers)``; a missing optional module is skipped
COMMAND_MODULES = (
    "llmskel.data.commands",
    "llmskel.engine.commands",
    "llmskel.engine.demo",
    "llmskel.text.commands",
    "llmskel.methods.commands",
    "llmskel.methods.recognize_cli",
    "llmskel.deploy",
    "llmskel.stream.commands",
)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def int_at_least(low: int):
    """argparse type: an integer >= ``low`` (``--top-k 0`` is a usage error, not an empty answer)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def number_in(low: float, high: float):
    """argparse type: a finite number in [low, high] (NaN and infinities are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
        if not low <= value <= high:  # also false for NaN
            raise argparse.ArgumentTypeError(f"must be a number in [{low:g}, {high:g}], got {text}")
        return value

    parse.__name__ = "number"
    return parse


def emit(args: argparse.Namespace, result: dict[str, Any], text: str | None = None) -> None:
    """Print ``result`` as one JSON object when ``--json`` was given, else ``text`` (or a key: value list).

    The JSON is strict: a NaN or infinite number (a metric over no samples, a broken model) is
    written as ``null``, never as the ``NaN`` token that JSON parsers refuse."""
    if getattr(args, "json", False):
        from .jsonio import dumps

        sys.stdout.write(dumps(result) + "\n")
        return
    if text is None:
        text = "\n".join(f"{k}: {v}" for k, v in result.items())
    print(text)


def emit_error(command: str | None, message: str) -> None:
    """With ``--json``: the one JSON object on stdout when a command fails (the line on stderr stays)."""
    sys.stdout.write(json.dumps({"error": message, "command": command}) + "\n")
    sys.stdout.flush()


class _Parser(argparse.ArgumentParser):
    """An argument parser that, under ``--json``, also reports usage errors as one JSON object."""

    json_errors = False

    def error(self, message: str):  # type: ignore[override]
        if _Parser.json_errors:
            emit_error(self.prog.removeprefix("llmskel").strip() or None, message)
        super().error(message)


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, except that ``key=value`` overrides may stand anywhere, also after
    an option (``--config C a=1 --output-dir D b=2``): argparse takes a ``nargs="*"`` positional only
    once, so the ones after an option come back unrecognised and are appended here, in their order."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        loose = [e for e in extra if e.startswith("-") or "=" not in e]
        if loose or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(loose or extra)}")
        args.overrides = [*(args.overrides or []), *extra]
    return args


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="llmskel",
        description="Skeleton-based action recognition with language: train, evaluate, zero-shot, few-shot, LLM.",
    )
    parser.add_argument("--version", action="version", version=f"llmskel {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _Parser.json_errors = "--json" in argv
    parser = build_parser()
    args = parse_with_overrides(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # Accelerate logs every file of every checkpoint at INFO; keep its warnings only
        logging.getLogger("accelerate").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .errors import LlmskelError

    try:
        rc = args.func(args)
    except (LlmskelError, OSError, KeyError) as e:
        # expected user-facing errors: one clear line, no traceback (use -v for one)
        msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
        if getattr(args, "json", False):
            emit_error(args.command, msg)
        if args.verbose:
            raise
        print(f"llmskel {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
