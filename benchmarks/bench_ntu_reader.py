"""NTU ``.skeleton`` reading speed: llmskel's reader against a plain line-by-line reader.

The NTU sample file is copied N times into a temporary folder; both readers parse every copy
(all bodies: ids, frame of each body, 25 x 3 joints) and the best of R rounds is reported::

    python benchmarks/bench_ntu_reader.py [--files 200] [--repeats 3] [--sample PATH]

prints one line: ``bench_ntu_reader: files=200 llmskel=... files/s plain=... files/s speedup=...x``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = Path(os.environ.get("LLMSKEL_SHARED_DATA", ROOT.parent / "shared" / "data")) / (
    "ntu_sample/S001C001P001R001A001.skeleton"
)


def plain_read(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reader a typical user writes: readline, split, float() per value."""
    ids, frames, joints = [], [], []
    with open(path) as f:
        num_frames = int(f.readline())
        for t in range(num_frames):
            num_bodies = int(f.readline())
            for _ in range(num_bodies):
                info = f.readline().split()
                num_joints = int(f.readline())
                body = []
                for _ in range(num_joints):
                    values = [float(v) for v in f.readline().split()]
                    body.append(values)
                ids.append(int(info[0]))
                frames.append(t)
                joints.append(body)
    arr = np.array(joints, dtype=np.float32)  # (B, 25, 12)
    return np.array(ids), np.array(frames), arr[:, :, :3]


def llmskel_read(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from llmskel.data.readers.ntu import read_ntu_skeleton

    s = read_ntu_skeleton(path)
    return s.body_id, s.frame, s.joints


def best_rate(reader, files: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in files:
            reader(f)
        best = min(best, time.perf_counter() - t0)
    return len(files) / best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=200, help="copies of the sample file to read")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the best is reported")
    p.add_argument("--sample", default=str(DEFAULT_SAMPLE), help="an NTU .skeleton file")
    args = p.parse_args(argv)
    sample = Path(args.sample)
    if not sample.is_file():
        print(f"bench_ntu_reader: sample file not found: {sample}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-ntu-"))
    try:
        files = []
        for i in range(args.files):
            f = tmp / f"S001C001P{i % 1000:03d}R001A001_{i}.skeleton"
            shutil.copy(sample, f)
            files.append(str(f))
        a, b = plain_read(files[0]), llmskel_read(files[0])
        if not all(np.array_equal(x, y) for x, y in zip(a, b)):
            print("bench_ntu_reader: the two readers disagree", file=sys.stderr)
            return 1
        plain = best_rate(plain_read, files, args.repeats)
        ours = best_rate(llmskel_read, files, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench_ntu_reader: files={args.files} llmskel={ours:.0f} files/s plain={plain:.0f} files/s "
        f"speedup={ours / plain:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
