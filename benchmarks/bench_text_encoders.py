"""Text encoders compared without training: nearest-label retrieval over the shipped description files.

    python benchmarks/bench_text_encoders.py [--encoders all-MiniLM-L6-v2,all-mpnet-base-v2]
                                             [--sets nw-ucla,utkinect,ntu120,utd-mhad,penn-action]

For every class of a description file the queries are its text without the class name: each synonym,
each whole-body sentence, and its six part descriptions joined into one paragraph. The gallery is
the label-prompt prototype of every class of the same file (the shipped label prompts, averaged, as
zero-shot classification builds them). Top-1: the fraction of queries whose nearest prototype
(cosine) is their own class; chance is 1 / classes. One line per encoder and set, then the mean over
sets:

    text_encoders: encoder=all-MiniLM-L6-v2 set=nw-ucla classes=10 synonyms=... sentence=... parts=... all=...

This is a proxy: it says how close an encoder puts an action's description to its name, which is
what zero-shot classification relies on when the skeleton side is trained against descriptions and
tested against names. ``--threads`` sets torch's threads (default 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def evaluate(encoder, name: str) -> dict[str, float]:
    import torch

    from llmskel.methods.zero_shot_text import class_texts, pooled_prototypes
    from llmskel.text.descriptions import load_descriptions
    from llmskel.text.resources import load_label_prompts

    ds = load_descriptions(name)
    prompts = load_label_prompts().prompts
    labels = ds.labels
    per_class = [class_texts(lb, prompts, None, ("label",)) for lb in labels]
    emb = encoder.encode([t for ts in per_class for t in ts])
    protos = pooled_prototypes(emb, [len(t) for t in per_class])  # (K, E)
    queries: dict[str, list[tuple[str, int]]] = {"synonyms": [], "sentence": [], "parts": []}
    for k, lb in enumerate(labels):
        d = ds[lb]
        queries["synonyms"] += [(s, k) for s in d.synonyms]
        queries["sentence"] += [(s, k) for s in d.sentences]
        queries["parts"].append((" ".join(d.parts[p][0] for p in d.parts), k))
    out = {"classes": len(labels)}
    hits_all = []
    for kind, items in queries.items():
        if not items:
            out[kind] = float("nan")
            continue
        q = encoder.encode([t for t, _ in items])
        pred = (q @ protos.T).argmax(1)
        hits = (pred == torch.tensor([k for _, k in items])).float().tolist()
        out[kind] = sum(hits) / len(hits)
        hits_all.append(out[kind])
    out["all"] = sum(hits_all) / len(hits_all)  # mean of the three query kinds
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoders", default="all-MiniLM-L6-v2,all-mpnet-base-v2")
    p.add_argument("--sets", default="nw-ucla,utkinect,ntu120,utd-mhad,penn-action")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from llmskel.text.encoders import build_text_encoder

    for spec in args.encoders.split(","):
        t0 = time.perf_counter()
        enc = build_text_encoder(spec)
        load_s = time.perf_counter() - t0
        rows = []
        for name in args.sets.split(","):
            r = evaluate(enc, name)
            rows.append(r)
            print(f"text_encoders: encoder={spec} set={name} classes={r['classes']} chance={1 / r['classes']:.3f} "
                  f"synonyms={r['synonyms']:.3f} sentence={r['sentence']:.3f} parts={r['parts']:.3f} "
                  f"all={r['all']:.3f}", flush=True)  # fmt: skip
        mean = {k: statistics.mean(r[k] for r in rows) for k in ("synonyms", "sentence", "parts", "all")}
        print(f"text_encoders: encoder={spec} set=mean-of-{len(rows)} synonyms={mean['synonyms']:.3f} "
              f"sentence={mean['sentence']:.3f} parts={mean['parts']:.3f} all={mean['all']:.3f} "
              f"load_s={load_s:.1f} total_s={time.perf_counter() - t0:.1f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
