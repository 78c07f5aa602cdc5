"""Few-shot / one-shot recognition: prototypes, text fusion, fine-tuning, episodes with confidence
intervals, the NTU-120 one-shot protocol, support sets and the ``llmskel fewshot`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmskel.cli import main as cli_main
from llmskel.data.synthetic import generate_sample
from llmskel.data.zsl_splits import (
    NTU120_ONE_SHOT_AUXILIARY,
    NTU120_ONE_SHOT_NOVEL,
    ntu120_one_shot_exemplars,
    ntu120_one_shot_split,
)
from llmskel.engine.config import load_experiment
from llmskel.errors import CheckpointError, ConfigError, SkeletonFormatError
from llmskel.hub import SkeletonModel
from llmskel.methods.few_shot import (
    FewShotClassifier,
    SupportError,
    class_prototypes,
    embed_samples,
    finetune_head,
    load_support,
    mean_ci95,
    one_shot_accuracy,
    run_episodes,
    text_prototypes,
)
from llmskel.text.tiny import save_tiny_sentence_encoder

ACTIONS = ["clap", "kick", "jump", "squat"]


pytestmark = pytest.mark.usefixtures("text_cache")  # one embedding cache for the session


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, train_tiny):
    """A tiny zero-shot model (has a text side) trained for two epochs on 6 synthetic classes."""
    root = tmp_path_factory.mktemp("fs")
    text = save_tiny_sentence_encoder(root / "bert16", hidden_size=16, seed=0)
    cfg = load_experiment(None, [
        "data.synthetic.num_classes=6", "data.synthetic.samples_per_class=4", "data.synthetic.num_subjects=4",
        "data.synthetic.num_frames=24", "data.num_frames=16", "data.num_bodies=1", "model.name=ctrgcn_tiny",
        "train.batch_size=8", "train.epochs=2", "train.progress=false", "train.trackers=[jsonl]",
        "method=zeroshot", "zeroshot.unseen=[squat]", "zeroshot.text=[label]", f"zeroshot.text_encoder=sentence:{text}",
        f"output_dir={root / 'run'}",
    ])  # fmt: skip
    res = train_tiny(cfg)
    return Path(res["run_dir"]) / "last"


def _samples(action: str, n: int, start: int = 1):
    return [generate_sample(action, subject=start + i, num_frames=24) for i in range(n)]


def _clusters(classes: int = 6, per_class: int = 12, dim: int = 16, noise: float = 0.3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(classes, dim, generator=g), dim=-1)
    y = torch.arange(classes).repeat_interleave(per_class)
    return F.normalize(centres[y] + noise * torch.randn(len(y), dim, generator=g), dim=-1), y


# ---------------------------------------------------------------------------------- prototypes
def test_prototypes_are_normalised_class_means_and_an_empty_class_is_an_error():
    emb = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    p = class_prototypes(emb, torch.tensor([0, 0, 1]), 2)
    torch.testing.assert_close(p[0], F.normalize(emb[0] + emb[1], dim=0))
    torch.testing.assert_close(p[1], emb[2])
    with pytest.raises(SupportError, match=r"support class\(es\) 'wave' have no examples"):
        class_prototypes(emb, torch.tensor([0, 0, 1]), 3, ["clap", "kick", "wave"])


def test_finetuned_head_fits_the_support_set_better_than_prototypes():
    emb, y = _clusters(noise=0.8, seed=1)  # overlapping clusters: prototypes fit 62 % of the support set
    protos = class_prototypes(emb, y, 6)
    tuned = finetune_head(emb, y, protos, steps=50, lr=0.05)
    acc = lambda w: float(((emb @ w.T).argmax(1) == y).float().mean())  # noqa: E731
    assert acc(tuned) > acc(protos) + 0.05
    torch.testing.assert_close(tuned.norm(dim=1), torch.ones(6))


# ---------------------------------------------------------------------------------- episodes
def test_episode_ci_shrinks_with_more_episodes_and_is_reproducible():
    emb, y = _clusters(noise=0.9)
    few = run_episodes(emb, y, n_way=5, k_shot=1, n_query=5, episodes=20, seed=3)
    many = run_episodes(emb, y, n_way=5, k_shot=1, n_query=5, episodes=500, seed=3)
    assert many["ci95"] < 0.5 * few["ci95"]  # ~ 1 / sqrt(25)
    assert (
        run_episodes(emb, y, n_way=5, k_shot=1, n_query=5, episodes=20, seed=3)["accuracies"]
        == few["accuracies"]
    )
    assert 0.2 < many["accuracy"] <= 1.0  # above 5-way chance
    five = run_episodes(emb, y, n_way=5, k_shot=5, n_query=5, episodes=500, seed=3)
    assert five["accuracy"] > many["accuracy"]  # more shots, better prototypes
    m, ci = mean_ci95([0.5, 0.7])
    assert m == pytest.approx(0.6) and ci == pytest.approx(1.96 * np.std([0.5, 0.7], ddof=1) / np.sqrt(2))
    with pytest.raises(ConfigError, match=r"10-way 1-shot episodes need 10 classes.*only 6"):
        run_episodes(emb, y, n_way=10)
    perfect, py = _clusters(noise=0.0)
    assert run_episodes(perfect, py, n_way=6, k_shot=1, episodes=10)["accuracy"] == 1.0


def test_text_fusion_mixes_support_and_class_name_scores(model_dir):
    model = SkeletonModel.from_pretrained(model_dir)
    emb, _ = _clusters(classes=3, per_class=2, dim=16)
    tp = text_prototypes(model, ["clap", "kick", "jump"])
    assert tp.shape == (3, 16)
    from llmskel.methods.few_shot import fused_scores

    protos = emb[::2]
    torch.testing.assert_close(fused_scores(emb, protos, tp, 1.0), emb @ tp.T)
    torch.testing.assert_close(fused_scores(emb, protos, tp, 0.25), 0.75 * emb @ protos.T + 0.25 * emb @ tp.T)
    r = run_episodes(emb.repeat(2, 1), torch.arange(3).repeat_interleave(2).repeat(2), n_way=3, k_shot=1,
                     episodes=5, text_protos=tp, text_fusion=0.5)  # fmt: skip
    assert 0.0 <= r["accuracy"] <= 1.0


# ---------------------------------------------------------------------------------- NTU-120 one-shot
def test_ntu120_one_shot_protocol_lists_and_split():
    assert NTU120_ONE_SHOT_NOVEL == (1, 7, 13, 19, 25, 31, 37, 43, 49, 55, 61, 67, 73, 79, 85, 91, 97, 103, 109, 115)  # fmt: skip
    assert len(NTU120_ONE_SHOT_AUXILIARY) == 100 and not set(NTU120_ONE_SHOT_AUXILIARY) & set(
        NTU120_ONE_SHOT_NOVEL
    )
    ex = ntu120_one_shot_exemplars()
    assert (
        ex[1] == "S001C003P008R001A001"
        and ex[55] == "S001C003P008R001A055"
        and ex[61] == "S018C003P008R001A061"
    )
    classes = [f"action {a}" for a in range(1, 121)]
    # two samples of every class: the exemplar-like name and another performer
    names, labels = [], []
    for a in range(1, 121):
        setup = 1 if a <= 60 else 18
        names += [f"/data/S{setup:03d}C003P008R001A{a:03d}.skeleton", f"S{setup:03d}C001P009R002A{a:03d}"]
        labels += [a - 1, a - 1]
    split = ntu120_one_shot_split(classes, labels, names)
    assert len(split.exemplars) == 20 and len(split.queries) == 20 and len(split.auxiliary) == 200
    assert [labels[i] + 1 for i in split.exemplars] == list(NTU120_ONE_SHOT_NOVEL)
    assert split.novel_classes[1] == "action 7"
    assert not set(split.exemplars) & set(split.queries)
    # exemplar embeddings equal to their queries' give a perfect score
    emb = F.normalize(torch.randn(120, 8), dim=-1).repeat_interleave(2, 0)
    assert one_shot_accuracy(emb, labels, split.exemplars, split.queries)["accuracy"] == 1.0
    with pytest.raises(
        ConfigError, match=r"exemplar sample\(s\) S001C003P008R001A001 are not in the dataset"
    ):
        ntu120_one_shot_split(classes, labels[1:], names[1:])


# ---------------------------------------------------------------------------------- classifier and CLI
def test_fewshot_classifier_and_bad_support_or_query(model_dir, tmp_path):
    model = SkeletonModel.from_pretrained(model_dir)
    support = [s for a in ACTIONS[:3] for s in _samples(a, 2)]
    labels = [a for a in ACTIONS[:3] for _ in range(2)]
    clf = FewShotClassifier(model, support, labels, text_fusion=0.3, finetune_steps=5)
    ranked = clf.predict(_samples("kick", 2, start=5), top_k=2)
    assert len(ranked) == 2 and all(r.label in ACTIONS[:3] and r.score >= r.top_k[1].score for r in ranked)
    assert all(r.target == "kick" for r in ranked)  # the samples' ground truth, kept beside the answer
    assert clf.scores(_samples("clap", 1)).shape == (1, 3)
    with pytest.raises(SupportError, match=r"support class\(es\) 'squat' have no examples"):
        FewShotClassifier(model, support, labels, classes=ACTIONS)
    from llmskel.data.sample import SkeletonSample

    k20 = SkeletonSample(np.random.default_rng(0).random((16, 1, 20, 3)).astype(np.float32), "kinect20",
                         source="kinect.npy")  # fmt: skip
    with pytest.raises(
        SkeletonFormatError, match=r"kinect.npy.*layout 'kinect20' cannot be used.*expects 'ntu25'"
    ):
        clf.scores([k20])
    # a model without a text side: prototypes work on the encoder feature, text fusion does not
    sup = SkeletonModel(model.config.__class__(model=dict(model.config.model), classes=model.classes, layout="ntu25",
                                               preprocessing=dict(model.config.preprocessing), method="supervised"))  # fmt: skip
    assert embed_samples(sup, support[:2]).shape == (2, sup.encoder.feature_dim)
    with pytest.raises(CheckpointError, match="has no text side"):
        FewShotClassifier(sup, support, labels, text_fusion=0.5)


def _write_support(root: Path, per_class: dict[str, int]) -> Path:
    for action, n in per_class.items():
        d = root / action
        d.mkdir(parents=True)
        for i, s in enumerate(_samples(action, n)):
            np.save(d / f"{i}.npy", s.data)
    return root


def test_support_folders_and_csv_with_clear_errors(tmp_path):
    root = _write_support(tmp_path / "support", {"clap": 2, "kick": 1})
    samples, labels = load_support(root)
    assert labels == ["clap", "clap", "kick"] and samples[0].data.shape[2] == 25
    (root / "wave").mkdir()
    with pytest.raises(SupportError, match=rf"{root / 'wave'}: support class 'wave' has no examples"):
        load_support(root)
    csv = tmp_path / "support.csv"
    csv.write_text("path,label\nsupport/clap/0.npy,clap\nsupport/kick/0.npy,\n")
    with pytest.raises(SupportError, match=rf"{csv} \(line 3\): needs a path and a label"):
        load_support(csv)
    csv.write_text("path,label\nsupport/clap/0.npy,clap\nsupport/kick/0.npy,kick\n")
    assert load_support(csv)[1] == ["clap", "kick"]
    csv.write_text("file;class\n")
    with pytest.raises(SupportError, match=r"\(line 1\): a support CSV needs a header 'path,label'"):
        load_support(csv)


def test_fewshot_cli(model_dir, tmp_path, capsys):
    root = _write_support(tmp_path / "support", {"clap": 2, "kick": 2, "jump": 2})
    q = tmp_path / "q.npy"
    np.save(q, generate_sample("jump", subject=7, num_frames=24).data)
    rc = cli_main(["fewshot", "--model", str(model_dir), "--support", str(root), "--query", str(q),
                   "synthetic:clap", "--text-fusion", "0.2", "--top-k", "3", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and sorted(out["classes"]) == ["clap", "jump", "kick"]
    assert out["support_per_class"] == {"clap": 2, "jump": 2, "kick": 2}
    assert [r["input"] for r in out["results"]] == [str(q), "synthetic:clap"]
    assert all(len(r["top_k"]) == 3 and r["label"] == r["top_k"][0]["label"] for r in out["results"])
    assert [r["target"] for r in out["results"]] == [None, "clap"]
    (root / "wave").mkdir()
    rc = cli_main(["fewshot", "--model", str(model_dir), "--support", str(root), "--query", str(q)])
    assert rc == 1 and "support class 'wave' has no examples" in capsys.readouterr().err
