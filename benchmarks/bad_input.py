"""Run the corrupt-input corpus of tests/test_bad_input.py against whichever llmskel is on the path.

    PYTHONPATH=/path/to/checkout python benchmarks/bad_input.py [--json OUT]

Each case runs ``llmskel.cli.main([...])`` in-process (a fresh temporary folder, 60 s limit) and is
judged: ``clear`` (the expected exit code, the file and the problem named), ``traceback`` (an
exception escaped ``main``), ``silent`` (success where an error or a warning was due), ``unclear``
(an error that does not name the file or the problem, or a wrong refusal), ``hang`` (over 60 s).
Prints a table by input kind and the totals.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise _Hang()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the per-case outcomes here")
    ap.add_argument("--timeout", type=int, default=60)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = importlib.util.spec_from_file_location(
        "bad_input_corpus", HERE.parent / "tests" / "test_bad_input.py"
    )
    corpus = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = corpus  # dataclasses look their module up
    spec.loader.exec_module(corpus)
    import llmskel

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)  # main()'s basicConfig then adds nothing
    logging.getLogger().setLevel(logging.INFO)
    signal.signal(signal.SIGALRM, _alarm)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = corpus.make_models(Path(tmp) / "models")
        for i, name in enumerate(sorted(corpus.CASES)):
            root = Path(tmp) / f"c{i}" / "in"
            root.mkdir(parents=True)
            os.chdir(root.parent)
            c = corpus.CASES[name](root, models)
            out = io.StringIO()

            def read(out=out) -> str:
                text = out.getvalue() + "\n" + buf.getvalue()
                buf.seek(0)
                buf.truncate()
                return text

            signal.alarm(args.timeout)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    o = corpus.run_cli(c.argv, read)
                verdict = corpus.judge(c, o)
            except _Hang:
                verdict = "hang"
                o = None
            finally:
                signal.alarm(0)
            err = o.error if o is not None else None
            results[name] = {
                "kind": c.kind,
                "verdict": verdict,
                "rc": None if o is None else o.rc,
                "expected_rc": c.rc,
                "exception": None if err is None else f"{type(err).__name__}: {str(err)[:200]}",
                "output": "" if o is None else o.out.strip()[-300:],
            }
    os.chdir(HERE)
    kinds = sorted({r["kind"] for r in results.values()})
    cols = ("clear", "traceback", "silent", "unclear", "hang")
    print(f"llmskel from {Path(llmskel.__file__).parent.parent}")
    print(f"| {'input kind':<10} | inputs | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 2))
    for k in kinds + ["all"]:
        rs = [r for r in results.values() if k in ("all", r["kind"])]
        counts = [sum(r["verdict"] == v for r in rs) for v in cols]
        print(f"| {k:<10} | {len(rs)} | " + " | ".join(map(str, counts)) + " |")
    for name, r in results.items():
        if r["verdict"] != "clear":
            print(f"  {r['verdict']:<9} {name}: {r['exception'] or r['output'][-160:]!r}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
