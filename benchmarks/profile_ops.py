"""Where a CTR-GCN training step spends its time, op by op, on the CPU.

One command::

    python benchmarks/profile_ops.py                              # our CTR-GCN, NW-UCLA shape
    python benchmarks/profile_ops.py --reference /tmp/CTR-GCN     # + the published code

Every aten call of a training step (forward, backward and an SGD step, as in bench_models.py) is
timed with a ``TorchDispatchMode`` around the call itself; batched products are split into the
1x1 convolutions (batch = the number of bodies), products per body (the topology refinement:
batch = subsets x bodies, or bodies with a joints x joints axis in an operand) and products per
(body, channel) (the topology aggregation).
The timer adds a little to every call, so the step times printed are slower than
bench_models.py's; use this for the shares, and bench_models.py for samples/s.
``torch.profiler`` with ``record_shapes`` was not used: it reported the small batched products
several times slower than they run.

Output: one line per model with the step time, then its most expensive ops.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_models import SHAPES, _build  # noqa: E402


def profile(spec: dict, steps: int, warmup: int, top: int) -> list[str]:
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode

    torch.manual_seed(0)
    batch, frames, joints, bodies, classes, *_ = SHAPES[spec["shape"]]
    model, forward = _build(spec)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(batch, 3, frames, joints, bodies)
    y = torch.randint(0, classes, (batch,))
    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    bodies_total = batch * bodies

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t0 = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            if name == "bmm":  # batch = bodies: 1x1 conv; a few per body: topology; more: per channel
                n = args[0].shape[0]
                # our topology products also have batch = bodies (one call per subset), but a
                # (V x V) topology on the joint axis: V*V is in their operands' shapes
                topo = joints * joints in (*args[0].shape[1:], *args[1].shape[1:])
                if n == bodies_total and not topo:
                    name += " (1x1 conv)"
                else:
                    name += " (per body)" if n < 8 * bodies_total else " (per channel)"
            spent[name] += time.perf_counter() - t0
            calls[name] += 1
            return out

    def step():
        loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    with OpTimer():
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    step_ms = 1e3 * statistics.median(times)
    ops_ms = 1e3 * sum(spent.values()) / steps
    lines = [f"profile_ops: model={spec['model']} shape={spec['shape']} step={step_ms:.0f} ms (timed) "
             f"ops={ops_ms:.0f} ms threads={torch.get_num_threads()}"]  # fmt: skip
    for name, sec in sorted(spent.items(), key=lambda kv: -kv[1])[:top]:
        ms = 1e3 * sec / steps
        lines.append(
            f"  {name:34s} {ms:8.1f} ms/step {calls[name] // steps:5d} calls {100 * ms / ops_ms:5.1f} %"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="ucla", choices=sorted(SHAPES))
    p.add_argument("--reference", metavar="DIR", help="checkout of github.com/Uason-Chen/CTR-GCN")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=12, help="ops listed per model")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    specs = [{"model": "ctrgcn", "shape": args.shape}]
    if args.reference:
        specs.append({"model": "ctrgcn_ref", "shape": args.shape, "ref_dir": args.reference})
    for spec in specs:
        print("\n".join(profile(spec, args.steps, args.warmup, args.top)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
