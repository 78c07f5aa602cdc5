"""Train a model: ``accelerate launch scripts/train.py --config configs/X.yaml [key=value ...]``.

A thin wrapper around :mod:`llmskel.train` (``accelerate launch -m llmskel.train ...`` does the
same from an installed package); see there for the arguments.
"""

from __future__ import annotations

from llmskel.train import main

if __name__ == "__main__":
    raise SystemExit(main())
