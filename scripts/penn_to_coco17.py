"""Write a Penn Action clip as a pose estimator's COCO-17 keypoint file (COCO results format), to try
a model on 2D estimator-style input:

    python scripts/penn_to_coco17.py ../shared/data/penn_action "golf swing" out.json

The first test clip of the action is taken. Penn's 13 joints are COCO's limb joints; Penn's head is
written as the nose; eyes and ears are undetected (all zero: score 0); Penn's visibility becomes a
confidence of 0.9 (visible) or 0.3 (occluded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from llmskel.data.layouts import get_layout
from llmskel.data.readers.penn_action import find_penn_action_files, read_penn_action_file


def main(root: str, action: str, out: str) -> None:
    coco, penn = get_layout("coco17"), get_layout("penn13")
    for f in find_penn_action_files(root):
        s = read_penn_action_file(f)
        if s.label_name == action and s.extra.get("split") == "test":
            break
    else:
        raise SystemExit(f"no test clip of {action!r} in {root}")
    x = s.data[:, 0]
    frames = []
    for t in range(x.shape[0]):
        kp = np.zeros((17, 3))
        for j, name in enumerate(coco.joints):
            src = "head" if name == "nose" else name
            if src in penn.joints:
                kp[j, :2] = x[t, penn.index(src), :2]
                kp[j, 2] = 0.9 if x[t, penn.index(src), 2] > 0 else 0.3
        frames.append({"image_id": t, "category_id": 1, "score": 0.9,
                       "keypoints": [round(float(v), 2) for v in kp.reshape(-1)]})  # fmt: skip
    Path(out).write_text(json.dumps(frames))
    print(f"{Path(f).name} ({action}, {len(frames)} frames) -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
