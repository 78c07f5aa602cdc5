"""Start-up time of the command line: ``llmskel --help`` vs ``python -c "import torch"``, same run.

    python benchmarks/bench_cli.py [--repeat 5]

Prints the median wall time of each over ``--repeat`` fresh interpreters.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    helpt = wall([sys.executable, "-m", "llmskel", "--help"], args.repeat)
    torcht = wall([sys.executable, "-c", "import torch"], args.repeat)
    bare = wall([sys.executable, "-c", "pass"], args.repeat)
    print(f"bench_cli: llmskel --help {helpt:.3f} s, python -c 'import torch' {torcht:.3f} s, "
          f"bare python {bare:.3f} s (median of {args.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
