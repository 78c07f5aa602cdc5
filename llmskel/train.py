"""Train a model under a launcher: ``accelerate launch -m llmskel.train --config NAME [key=value ...]``.

``NAME`` is a built-in config (``ucla_ctrgcn_cpu``, ...) or a YAML path; with no config it trains
the synthetic default. ``--resume`` continues the latest checkpoint of the run, ``--resume PATH`` a
given one. The same loop as ``llmskel train``; this module gives ``accelerate launch -m`` and
``torchrun -m`` something to start from an installed package (``scripts/train.py`` does the same
from a checkout).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from llmskel.engine.commands import train_main

    return train_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
