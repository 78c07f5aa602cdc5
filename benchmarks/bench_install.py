"""Installed size of llmskel's dependency closure: core vs each extra vs all (no download).

Walks the requirement graph of pyproject.toml through the distributions installed in this
environment (importlib.metadata) and adds up the files each one installed (RECORD). torch,
triton, torchvision and the nvidia-* CUDA wheels are reported apart: they depend on the PyTorch
build (CUDA or CPU), not on llmskel's choices.

    python benchmarks/bench_install.py [--pyproject OTHER.toml]   # e.g. an older pyproject.toml
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

try:  # Python >= 3.11
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TORCH_BUILD = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        if p.is_file():
            total += p.stat().st_size
    return total


def closure(reqs: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [Requirement(r) for r in reqs]
    while todo:
        r = todo.pop()
        if r.marker and not r.marker.evaluate({"extra": ""}):
            continue
        n = norm(r.name)
        if n in seen or n == "llmskel":
            continue
        try:
            dist = metadata.distribution(r.name)
        except metadata.PackageNotFoundError:
            print(f"  (not installed here: {r.name})", file=sys.stderr)
            continue
        seen.add(n)
        for sub in dist.requires or []:
            s = Requirement(sub)
            if s.marker and not s.marker.evaluate({"extra": ""}):
                continue  # an extra of that package, not installed by default
            todo.append(s)
    return seen


def main() -> None:
    path = (
        Path(sys.argv[sys.argv.index("--pyproject") + 1])
        if "--pyproject" in sys.argv
        else ROOT / "pyproject.toml"
    )
    project = tomllib.loads(path.read_text())["project"]
    core = project["dependencies"]
    extras = {k: v for k, v in project["optional-dependencies"].items() if k not in ("all", "dev")}
    sizes = {norm(d.metadata["Name"]): dist_size(d) for d in metadata.distributions()}

    def report(label: str, reqs: list[str]) -> set[str]:
        names = closure(reqs)
        torch_mb = sum(sizes.get(n, 0) for n in names if TORCH_BUILD.match(n)) / 2**20
        rest_mb = sum(sizes.get(n, 0) for n in names if not TORCH_BUILD.match(n)) / 2**20
        print(
            f"{label:<28} {len(names):>4} distributions  {rest_mb:8.0f} MiB without the torch build  (+{torch_mb:.0f} MiB torch build)"
        )
        return names

    base = report("core", core)
    big = sorted(base, key=lambda n: -sizes.get(n, 0) if not TORCH_BUILD.match(n) else 0)[:6]
    print("  largest: " + ", ".join(f"{n} {sizes.get(n, 0) / 2**20:.0f}" for n in big))
    for name, reqs in extras.items():
        extra = closure(core + reqs) - base
        mb = sum(sizes.get(n, 0) for n in extra if not TORCH_BUILD.match(n)) / 2**20
        big = sorted(extra, key=lambda n: -sizes.get(n, 0))[:4]
        print(
            f"  + [{name}]{'':<19} +{len(extra):>3} distributions  {mb:8.0f} MiB  (largest: {', '.join(big)})"
        )
    report("all extras", core + [r for v in extras.values() for r in v])


if __name__ == "__main__":
    main()
