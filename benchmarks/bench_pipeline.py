"""Training data pipeline throughput on one CPU core.

NW-UCLA training split (views 1 and 2) read from the skeleton cache, through the training
pipeline (random crop-resize to 64 frames, rotation, scale and joint noise, a bone or motion
stream) and collated into batches of 16 by a single-process DataLoader, with one thread.

    python benchmarks/bench_pipeline.py [--root ../shared/data/nw_ucla/all_sqe] [--stream bone_motion]

prints one line::

    bench_pipeline: samples_per_s=... batch=16 frames=64 stream=bone_motion source=nw-ucla-cache ...

The cache is written once to ``--cache`` (default: a folder in the system temp directory). Without
the NW-UCLA files the benchmark falls back to the synthetic set and says so in ``source=``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: numpy's BLAS must not spawn threads either

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from llmskel.data.config import AugmentConfig, DataConfig, SyntheticConfig  # noqa: E402
from llmskel.data.pipeline import PipelineDataset, SkeletonPipeline  # noqa: E402
from llmskel.data.sample import BaseSkeletonDataset, skeleton_collate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_dataset(root: Path, cache: Path) -> tuple[BaseSkeletonDataset, str]:
    """NW-UCLA training views from the cache (written on first use), else a fallback."""
    try:
        from llmskel.data.cache import CachedSkeletonDataset, is_cache, write_cache
    except ImportError:
        CachedSkeletonDataset = None  # noqa: N806
    if root.exists():
        if CachedSkeletonDataset is not None:
            if not is_cache(cache):
                from llmskel.data.readers.nwucla import load_nwucla

                print(f"writing NW-UCLA cache to {cache}", file=sys.stderr)
                write_cache(load_nwucla(root), cache)
            ds, source = CachedSkeletonDataset(cache), "nw-ucla-cache"
        else:
            from llmskel.data.readers.nwucla import load_nwucla

            ds, source = load_nwucla(root), "nw-ucla-memory"
        train = [i for i in range(len(ds)) if ds.meta(i)["view"] in (1, 2)]
        return ds.subset(train), source
    from llmskel.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(SyntheticConfig(num_classes=20, samples_per_class=51)), "synthetic"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "nw_ucla" / "all_sqe")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "llmskel_bench_nwucla_cache")
    p.add_argument(
        "--stream", default="bone_motion", choices=["joint", "bone", "joint_motion", "bone_motion"]
    )
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--bodies", type=int, default=1, help="NW-UCLA has one person per sequence")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3, help="timed passes over the training split")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    ds, source = load_dataset(args.root, args.cache)
    cfg = DataConfig(
        dataset="cache",
        root=str(args.cache),
        num_frames=args.frames,
        num_bodies=args.bodies,
        stream=args.stream,
        train_crop=(0.5, 1.0),
        augment=AugmentConfig(rotate=15.0, scale=0.1, noise=0.005),
    )
    data = PipelineDataset(ds, SkeletonPipeline(cfg, ds.layout, train=True), seed=0)
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(
        data, batch_size=args.batch_size, shuffle=True, generator=g, collate_fn=skeleton_collate
    )

    for _batch in loader:  # warm-up pass: page cache, lazy imports, resize plans
        pass
    times = []
    for epoch in range(1, args.epochs + 1):
        data.set_epoch(epoch)
        t0 = time.perf_counter()
        n = 0
        for batch in loader:
            n += batch["x"].shape[0]
        times.append(time.perf_counter() - t0)
    shape = tuple(batch["x"].shape)
    rate = n / min(times)  # best pass: least disturbed by other processes

    tracemalloc.start()  # Python-side allocations of one (untimed) pass
    for _ in zip(range(20), loader):
        pass
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    print(
        f"bench_pipeline: samples_per_s={rate:.0f} median_samples_per_s={n / float(np.median(times)):.0f} "
        f"batch={args.batch_size} frames={args.frames} stream={args.stream} samples={n} source={source} "
        f"batch_shape={shape} threads=1 peak_rss_mib={rss:.0f} traced_peak_mib={traced_peak:.1f}"
    )


if __name__ == "__main__":
    main()
