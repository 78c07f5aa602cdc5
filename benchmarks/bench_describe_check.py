"""How many of an LLM's part descriptions survive the content check (llmskel.text.content).

    python benchmarks/bench_describe_check.py [--llm SmolLM2-135M-Instruct] [--retries 0]
        [--cache FILE] [--out DIR] [--sets utd-mhad,penn-action]

Describes the class names of each set (from the shipped description files, so the names are the
datasets' own) with ``--llm`` using the format checks only (``content_check=False``: what
``llmskel describe`` accepted before the content check existed), then runs the content check on the
accepted classes. Prints per set:

    describe_check: set=utd-mhad classes=27 format_ok=... content_ok=... answers=... seconds=...

and writes ``DIR/<set>.json`` with every rejected part and its reason, and the accepted file.
Greedy decoding, ``--retries`` reworded sampled retries (default 0: first answers only). Generation
is slow on the CPU (about 3 s an answer on 2 cores); ``--cache`` keeps answers, so a rerun is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llm", default="SmolLM2-135M-Instruct")
    p.add_argument("--sets", default="utd-mhad,penn-action")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--cache", default=None)
    p.add_argument("--out", default="runs/bench_describe_check")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from llmskel.text.content import check_set
    from llmskel.text.describe import Describer
    from llmskel.text.descriptions import load_descriptions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    describer = Describer(args.llm, retries=args.retries, cache=args.cache or True, progress=False,
                          content_check=False)  # fmt: skip
    for name in args.sets.split(","):
        labels = load_descriptions(name).labels
        t0 = time.perf_counter()
        report = describer.describe(labels)
        rejected = check_set(report.descriptions)
        ok = [lb for lb in report.descriptions.labels if lb not in rejected]
        parts_total = sum(len(d.parts) for d in report.descriptions.classes.values())
        parts_bad = sum(len(v) for v in rejected.values())
        reasons: dict[str, int] = {}
        for v in rejected.values():
            for why in v.values():
                key = why.split(" (")[0]
                reasons[key] = reasons.get(key, 0) + 1
        print(f"describe_check: set={name} classes={len(labels)} format_ok={len(report.descriptions)} "
              f"content_ok={len(ok)} parts_checked={parts_total} parts_rejected={parts_bad} "
              f"answers={report.generated} from_cache={report.from_cache} seconds={time.perf_counter() - t0:.0f} "
              f"reasons={json.dumps(reasons, sort_keys=True)}", flush=True)  # fmt: skip
        (out / f"{name}.json").write_text(json.dumps(
            {"format_failed": report.failed, "content_rejected": rejected, "content_ok": ok}, indent=1))  # fmt: skip
        if len(report.descriptions):
            report.descriptions.save(out / f"{name}.smollm2.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
