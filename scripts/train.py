"""Train a model: ``accelerate launch scripts/train.py --config configs/X.yaml [key=value ...]``.

With no config it trains the synthetic default (a few minutes on two CPU cores) and prints the test
accuracy. ``--resume`` continues the latest checkpoint of the run, ``--resume PATH`` a given one.
Same as ``llmskel train``; this file exists so that ``accelerate launch`` has a script to start.
"""

from __future__ import annotations

import sys

from llmskel.engine.commands import train_main

if __name__ == "__main__":
    raise SystemExit(train_main(sys.argv[1:]))
