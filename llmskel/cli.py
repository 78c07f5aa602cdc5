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
    "llmskel.stream.commands",
)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def emit(args: argparse.Namespace, result: dict[str, Any], text: str | None = None) -> None:
    """Print ``result`` as one JSON object when ``--json`` was given, else ``text`` (or a key: value list)."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(result, default=_json_default) + "\n")
        return
    if text is None:
        text = "\n".join(f"{k}: {v}" for k, v in result.items())
    print(text)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
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
    except (LlmskelError, FileNotFoundError, KeyError) as e:
        # expected user-facing errors: one clear line, no traceback (use -v for one)
        if args.verbose:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"llmskel {args.command}: error: {msg}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
