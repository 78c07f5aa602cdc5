"""Open vocabulary across datasets and layouts: the joint space, 3D -> 2D projections, data.sources,
classes merged by text, zero-shot training on every class, and 2D input refused by 3D models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmskel.config import from_dict, load_config
from llmskel.data.config import DataConfig
from llmskel.data.joint_space import (
    JOINT_SPACE,
    ProjectConfig,
    TwoDInputError,
    joint_space_table,
    layout_mask,
    project_to_2d,
    to_joint_space,
)
from llmskel.data.layouts import LAYOUTS, get_layout
from llmskel.data.multi import class_key, merge_classes, similar_class_pairs
from llmskel.data.pipeline import SkeletonPipeline
from llmskel.data.sample import SkeletonSample
from llmskel.engine.config import ExperimentConfig, load_experiment
from llmskel.errors import ConfigError
from llmskel.hub import SkeletonModel, SkeletonModelConfig
from llmskel.text.tiny import save_tiny_sentence_encoder

ROOT = Path(__file__).resolve().parents[1]
OMNI = get_layout(JOINT_SPACE)


def coded(layout: str, channels: int = 3, frames: int = 2) -> np.ndarray:
    """(T, 1, V, C): joint v sits at x = v + 1, y = 10 * (v + 1), last channel 0.5 (a score) or v + 1."""
    v = get_layout(layout).num_joints
    x = np.zeros((frames, 1, v, channels), np.float32)
    x[..., 0] = np.arange(1, v + 1)
    x[..., 1] = 10 * np.arange(1, v + 1)
    x[..., 2] = 0.5 if not get_layout(layout).three_d else np.arange(1, v + 1)
    return x


def at(out: np.ndarray, joint: str) -> np.ndarray:
    return out[0, 0, OMNI.index(joint)]


# ------------------------------------------------------------------------------- the joint space
def test_every_layout_maps_into_the_joint_space_with_its_own_mask():
    table = joint_space_table()
    assert set(table) == set(LAYOUTS) - {JOINT_SPACE}
    assert layout_mask("ntu25").all()
    assert layout_mask("kinect20").sum() == 20 and layout_mask("utd20").sum() == 20
    # Kinect v1 lacks the neck, hand tips and thumbs: masked
    assert set(table["kinect20"]["masked"]) == {
        "neck",
        "left hand tip",
        "left thumb",
        "right hand tip",
        "right thumb",
    }
    # COCO-17: 12 limb joints measured, pelvis / shoulder centre / head derived, the rest masked
    assert len(table["coco17"]["measured"]) == 12
    assert set(table["coco17"]["derived"]) == {"spine base", "spine shoulder", "head"}
    assert {"spine mid", "neck", "left hand", "left foot", "left thumb"} <= set(table["coco17"]["masked"])
    assert "spine shoulder" in table["openpose18"]["measured"]  # OpenPose's neck is the shoulder centre
    assert {"left hand tip", "left thumb", "left foot"} <= set(table["mediapipe33"]["measured"])
    assert "head" in table["penn13"]["measured"] and "spine mid" in table["penn13"]["masked"]


def test_known_joints_land_where_expected_3d():
    k = get_layout("kinect20")
    out = to_joint_space(coded("kinect20"), "kinect20", 3)
    assert out.shape == (2, 1, 25, 3)
    np.testing.assert_allclose(at(out, "spine base"), coded("kinect20")[0, 0, k.index("hip center")])
    np.testing.assert_allclose(at(out, "left wrist"), coded("kinect20")[0, 0, k.index("left wrist")])
    np.testing.assert_allclose(at(out, "spine shoulder"), coded("kinect20")[0, 0, k.index("shoulder center")])
    assert not at(out, "neck").any() and not at(out, "right thumb").any()  # masked: zero
    # UTD-MHAD holds the same joints in its own order: the same joint-space sample
    u = get_layout("utd20")
    utd = np.zeros_like(coded("kinect20"))
    for i, name in enumerate(u.joints):
        utd[:, :, i] = coded("kinect20")[:, :, k.index(name)]
    np.testing.assert_array_equal(to_joint_space(utd, "utd20", 3), out)
    np.testing.assert_array_equal(to_joint_space(coded("ntu25"), "ntu25", 3), coded("ntu25"))


def test_known_joints_land_where_expected_2d_with_y_up_and_a_score():
    c = get_layout("coco17")
    x = coded("coco17")
    out = to_joint_space(x, "coco17", 2)
    lw = c.index("left wrist")
    np.testing.assert_allclose(at(out, "left wrist"), [lw + 1, -10 * (lw + 1), 0.5])  # image y down -> y up
    le, re = c.index("left ear"), c.index("right ear")
    np.testing.assert_allclose(at(out, "head")[:2], [(le + re + 2) / 2, -10 * (le + re + 2) / 2])
    assert not at(out, "spine mid").any() and not at(out, "left thumb").any()
    # a derived joint is absent where either of its two joints is
    x[0, 0, c.index("left hip")] = 0
    out = to_joint_space(x, "coco17", 2)
    assert not out[0, 0, OMNI.index("spine base")].any() and out[1, 0, OMNI.index("spine base")].any()
    # (x, y) data without a score: score 1 where present
    two = to_joint_space(coded("penn13")[..., :2], "penn13", 2)
    assert at(two, "head")[2] == 1.0 and at(two, "neck")[2] == 0.0
    mp = to_joint_space(coded("mediapipe33"), "mediapipe33", 2)
    assert at(mp, "left hand tip")[0] == get_layout("mediapipe33").index("left index") + 1


# ------------------------------------------------------------------------------- projection
def body3d(frames: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (frames, 1, 25, 3)).astype(np.float32)
    x[..., 2] += 3.0  # three metres in front of a Kinect
    x[:, :, OMNI.index("neck")] = 0  # one absent joint
    return x


def test_projection_drops_depth_keeps_absent_joints_and_is_deterministic_under_a_seed():
    x = body3d()
    front = project_to_2d(x)  # evaluation: frontal orthographic
    assert front.shape == x.shape
    np.testing.assert_array_equal(front[..., :2], x[..., :2])
    assert (front[..., 2] == (x != 0).any(-1)).all()  # channel 2 is a score now, not depth
    cfg = ProjectConfig()
    a = project_to_2d(x, np.random.default_rng(3), cfg)
    b = project_to_2d(x, np.random.default_rng(3), cfg)
    c = project_to_2d(x, np.random.default_rng(4), cfg)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not a[:, :, OMNI.index("neck")].any()
    s = a[..., 2][(x != 0).any(-1)]
    assert s.min() >= cfg.score[0] and s.max() <= cfg.score[1]
    # a camera that does not move, orthographic, noiseless: x and y unchanged
    still = ProjectConfig(yaw=0, pitch=0, perspective=0, noise=0, score=(1, 1))
    np.testing.assert_allclose(
        project_to_2d(x, np.random.default_rng(0), still)[..., :2], x[..., :2], atol=1e-5
    )
    # a quarter turn about the vertical axis: x now carries the old depth
    quarter = ProjectConfig(yaw=90, pitch=0, perspective=0, noise=0)

    class Extreme:  # draws the largest angle every time
        def uniform(self, lo=0.0, hi=1.0, size=None):
            return hi if size is None else np.full(size, hi)

        def random(self):
            return 1.0

    q = project_to_2d(x, Extreme(), quarter)
    hips = list(OMNI.origin_joints)
    c0 = x[0, 0, hips].mean(0)
    np.testing.assert_allclose(q[0, 0, 0, 0] - c0[0], x[0, 0, 0, 2] - c0[2], atol=1e-5)


def pipe_cfg(**kw) -> DataConfig:
    base = {"dataset": "synthetic", "joint_space": True, "num_frames": 8, "num_bodies": 1}
    return from_dict(DataConfig, {**base, **kw})


def test_the_pipeline_gives_a_mask_channel_in_3d_and_projects_3d_for_a_2d_model():
    s3 = SkeletonSample(coded("kinect20", frames=10) / 10, "kinect20", label=0)
    out = SkeletonPipeline(pipe_cfg(spatial_dims=3), "kinect20")(s3)["x"]
    assert out.shape == (8, 1, 25, 4)
    np.testing.assert_array_equal(out[0, 0, :, 3], layout_mask("kinect20"))  # x, y, z, mask
    two = SkeletonPipeline(pipe_cfg(spatial_dims=2), "kinect20", train=True)
    a = two(s3, np.random.default_rng(1))["x"]
    assert a.shape == (8, 1, 25, 3)  # x, y, score
    assert (a[..., 2] > 0).sum(-1).max() == 20
    coco = SkeletonSample(coded("coco17", frames=10), "coco17", label=0)
    b = SkeletonPipeline(pipe_cfg(spatial_dims=2), "coco17")(coco)["x"]
    np.testing.assert_array_equal(b[0, 0, :, 2] > 0, layout_mask("coco17"))


def test_layout_dropout_cuts_a_training_sample_down_to_a_sparser_layout_and_is_validated():
    s3 = SkeletonSample(coded("kinect20", frames=10) / 10, "kinect20", label=0)
    coco = layout_mask("coco17")
    extra = layout_mask("kinect20") & ~coco  # spine mid, hands, feet: joints Kinect has and COCO-17 lacks
    assert extra.sum() == 5
    pipe = SkeletonPipeline(pipe_cfg(spatial_dims=2, augment={"layout_dropout": 1.0}), "kinect20", train=True)
    for seed in range(3):
        present = pipe(s3, np.random.default_rng(seed))["x"][..., 2] > 0  # the score channel says
        np.testing.assert_array_equal(present.any(axis=(0, 1)), coco & layout_mask("kinect20"))
    # half the samples keep every joint; evaluation never drops any
    half = SkeletonPipeline(pipe_cfg(spatial_dims=2, augment={"layout_dropout": 0.5}), "kinect20", train=True)
    full = [
        bool((half(s3, np.random.default_rng(i))["x"][..., 2] > 0).any(axis=(0, 1))[extra].all())
        for i in range(40)
    ]
    assert 8 < sum(full) < 32
    ev = SkeletonPipeline(pipe_cfg(spatial_dims=3, augment={"layout_dropout": 1.0}), "kinect20")(s3)["x"]
    np.testing.assert_array_equal(ev[0, 0, :, 3], layout_mask("kinect20"))
    # another target layout, in 3D: the mask channel follows
    pipe3 = SkeletonPipeline(
        pipe_cfg(spatial_dims=3, augment={"layout_dropout": 1.0, "layout_dropout_to": ["penn13"]}),
        "kinect20",
        True,
    )
    out = pipe3(s3, np.random.default_rng(0))["x"]
    np.testing.assert_array_equal(out[0, 0, :, 3], layout_mask("penn13") & layout_mask("kinect20"))
    assert np.all(out[..., ~layout_mask("penn13"), :3] == 0)
    for aug, msg in [
        ({"layout_dropout": 0.5, "layout_dropout_to": ["kinect99"]}, r"\['kinect99'\] have no mapping"),
        ({"layout_dropout": 0.5, "layout_dropout_to": []}, "is empty"),
        ({"layout_dropout": 1.5}, "layout_dropout"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            pipe_cfg(augment=aug)
    with pytest.raises(ConfigError, match="needs the joint space"):
        from_dict(DataConfig, {"dataset": "synthetic", "augment": {"layout_dropout": 0.5}})


def test_joint_subset_keeps_the_same_joints_in_training_and_at_inference_and_is_saved_with_the_model():
    from llmskel.methods.supervised import preprocessing_of

    s3 = SkeletonSample(coded("kinect20", frames=10) / 10, "kinect20", label=0)
    cfg = pipe_cfg(spatial_dims=3, joint_subset="coco17")
    want = layout_mask("coco17") & layout_mask("kinect20")
    for train, rng in ((True, np.random.default_rng(0)), (False, None)):
        out = SkeletonPipeline(cfg, "kinect20", train=train)(s3, rng)["x"]
        np.testing.assert_array_equal(out[0, 0, :, 3], want)
    pre = preprocessing_of(cfg)
    assert pre["joint_subset"] == "coco17"
    arch = {"arch": "ctrgcn", "layout": JOINT_SPACE, "in_channels": 4, "num_classes": 2, "num_bodies": 1,
            "base_channels": 4, "stage_blocks": [1, 1, 1]}  # fmt: skip
    model = SkeletonModel(SkeletonModelConfig(arch, ["a", "b"], JOINT_SPACE, preprocessing=pre))
    x = model.prepare_inputs([s3])  # (N, C, T, V, M): the mask channel is the last of C
    np.testing.assert_array_equal(x[0, 3, 0, :, 0].numpy(), want)
    with pytest.raises(ConfigError, match="'data.joint_subset': layout 'kinect99'"):
        pipe_cfg(joint_subset="kinect99")
    with pytest.raises(ConfigError, match="joint_subset' needs the joint space"):
        from_dict(DataConfig, {"dataset": "synthetic", "joint_subset": "coco17"})


def test_score_jitter_gives_2d_and_projected_3d_sources_one_score_distribution():
    # Penn-like 2D input: visibility exactly 1 (0 for an occluded joint); a projected 3D joint: project.score
    vis = coded("penn13", frames=10)
    vis[..., 2] = 1.0
    vis[:, :, 4, 2] = 0.0  # an occluded joint keeps score 0 (absent)
    vis[:, :, 4, :2] = 0.0
    penn = SkeletonSample(vis, "penn13", label=0)
    kin = SkeletonSample(coded("kinect20", frames=10) / 10, "kinect20", label=0)
    cfg = pipe_cfg(spatial_dims=2, project={"score": [1.0, 1.0]}, augment={"score_jitter": 0.4})
    pipe = SkeletonPipeline(cfg, "penn13", train=True)
    for sample in (penn, kin):
        scores = pipe(sample, np.random.default_rng(0))["x"][..., 2]
        present = scores[scores > 0]
        assert present.min() >= 0.6 - 1e-6 and present.max() <= 1.0 + 1e-6 and present.std() > 0.05
    absent = pipe(penn, np.random.default_rng(0))["x"][..., 2]
    # the occluded joint stays absent
    assert (absent > 0).sum(-1).max() == int(layout_mask("penn13").sum()) - 1
    # evaluation keeps the scores as given
    ev = SkeletonPipeline(cfg, "penn13")(penn)["x"][..., 2]
    assert set(np.unique(ev)) <= {0.0, 1.0}


# ------------------------------------------------------------------------------- 2D into 3D
def test_a_3d_model_refuses_2d_input_naming_both():
    coco = SkeletonSample(coded("coco17", frames=10), "coco17", label=0, source="clip.json")
    with pytest.raises(TwoDInputError, match=r"clip\.json.*2D input \(layout coco17.*takes 3D"):
        SkeletonPipeline(pipe_cfg(spatial_dims=3), "coco17")(coco)
    pre = {"num_frames": 8, "num_bodies": 1, "joint_space": True, "spatial_dims": 3}
    arch = {"arch": "ctrgcn", "layout": JOINT_SPACE, "in_channels": 4, "num_classes": 2, "num_bodies": 1,
            "base_channels": 4, "stage_blocks": [1, 1, 1]}  # fmt: skip
    model = SkeletonModel(SkeletonModelConfig(arch, ["a", "b"], JOINT_SPACE, preprocessing=pre))
    with pytest.raises(TwoDInputError, match="coco17"):
        model.prepare_inputs([coco])
    # a 3D Kinect sample and a raw NTU-layout sample are read
    kin = SkeletonSample(coded("kinect20", frames=10) / 10, "kinect20")
    assert model.prepare_inputs([kin, SkeletonSample(coded("ntu25", frames=6) / 10, "ntu25")]).shape[:2] == (
        2,
        4,
    )
    # and training a 3D model on a 2D source is a config error naming the source
    with pytest.raises(ConfigError, match="penn-action.*2D.*spatial_dims is 3"):
        from_dict(DataConfig, {"spatial_dims": 3, "sources": [{"dataset": "utkinect", "root": "x"},
                                                               {"dataset": "penn-action", "root": "y"}]})  # fmt: skip


# ------------------------------------------------------------------------------- data.sources
def test_multi_source_config_is_typed_and_validated():
    ok = from_dict(DataConfig, {"sources": [{"dataset": "ucla", "root": "a", "protocol": "xview"},
                                            {"dataset": "penn", "root": "b", "weight": 0.5}]})  # fmt: skip
    assert [s.dataset for s in ok.sources] == ["nw-ucla", "penn-action"]  # aliases resolved
    assert ok.joint_space is True and ok.spatial_dims == 2  # a 2D source: a 2D model
    three = from_dict(
        DataConfig, {"sources": [{"dataset": "utkinect", "root": "a"}, {"dataset": "synthetic"}]}
    )
    assert three.spatial_dims == 3
    bad = [
        ({"sources": [{"dataset": "kinetics9", "root": "a"}]}, "unknown dataset 'kinetics9'"),
        ({"sources": [{"dataset": "utkinect", "root": "a", "weight": 0}]}, "weight must be > 0"),
        ({"sources": [{"dataset": "utkinect"}]}, "'root' is required"),
        ({"sources": [{"dataset": "synthetic"}, {"dataset": "synthetic"}]}, "twice"),
        ({"sources": [{"dataset": "synthetic", "use": "test"}]}, "no source is used for training"),
        ({"sources": [{"dataset": "synthetic", "wieght": 2}]}, "did you mean 'weight'"),
        ({"sources": [{"dataset": "synthetic", "use": "both"}]}, "valid values"),
        ({"sources": []}, "empty list"),
    ]
    for data, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            from_dict(DataConfig, data)


def test_the_shipped_open_vocabulary_configs_load():
    full = load_config(ExperimentConfig, ROOT / "configs" / "openvocab.yaml")
    assert {s.dataset for s in full.data.sources} == {"nw-ucla", "utkinect", "utd-mhad", "penn-action"}
    assert full.method == "zeroshot" and full.zeroshot.split is None and full.data.spatial_dims == 2
    for name, held in [
        ("utkinect", "utkinect"),
        ("utdmhad", "utd-mhad"),
        ("nwucla", "nw-ucla"),
        ("penn", "penn-action"),
    ]:
        lodo = load_config(ExperimentConfig, ROOT / "configs" / f"openvocab_lodo_{name}.yaml")
        assert held not in {s.dataset for s in lodo.data.sources} and len(lodo.data.sources) == 3
        assert lodo.model == full.model and lodo.train.epochs == full.train.epochs  # same model and budget


# ------------------------------------------------------------------------------- classes by text
def test_classes_merge_by_normalised_text_and_paraphrases_stay_separate():
    union, maps = merge_classes(
        [["sit down", "stand up", "throw"], ["Sit_Down", "walk", "throw."], ["stand to sit"]]
    )
    assert union == ["sit down", "stand up", "throw", "walk", "stand to sit"]
    assert maps == [[0, 1, 2], [0, 3, 2], [4]]
    assert class_key("Right-hand  draw circle (clockwise)") == "right hand draw circle (clockwise)"
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    assert similar_class_pairs(["sit down", "stand to sit", "golf swing"], emb, 0.9) == [
        ("sit down", "stand to sit", pytest.approx(0.9939, abs=1e-3))
    ]


def test_multi_source_data_merges_classes_and_weights_sources(ucla_dir, utkinect_dir):
    from llmskel.engine.data import build_data, make_loaders

    cfg = from_dict(DataConfig, {"num_frames": 8, "num_bodies": 1, "sources": [
        {"dataset": "nw-ucla", "root": str(ucla_dir), "protocol": "xview", "use": "test"},
        {"dataset": "utkinect", "root": str(utkinect_dir), "protocol": "xsub", "weight": 3}]})  # fmt: skip
    b = build_data(cfg, seed=0)
    assert b.layout == JOINT_SPACE and b.channels == 4 and b.source_names == ["nw-ucla", "utkinect"]
    assert len(b.classes) == 10 + 10 - 4  # sit down, stand up, throw, carry: one class each
    assert b.classes.count("sit down") == 1
    assert (b.source_of[b.train_idx] == 1).all()  # nw-ucla: test only
    names = {b.full.get(int(i)).extra["source"] for i in b.test_idx}
    assert names == {"nw-ucla", "utkinect"}
    sit = b.classes.index("sit down")
    srcs = {b.full.get(int(i)).extra["source"] for i in np.flatnonzero(b.full.labels == sit)}
    assert srcs == {"nw-ucla", "utkinect"}
    assert b.train[0]["x"].shape == (8, 1, 25, 4)
    train, _ = make_loaders(b, 8, 8, 0, 0)
    assert train.sampler.__class__.__name__ == "RandomSampler"  # one source trains: no weights needed


# ------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    return save_tiny_sentence_encoder(tmp_path_factory.mktemp("text") / "bert16", hidden_size=16, seed=0)


TINY = [
    "data.synthetic.num_classes=6", "data.synthetic.samples_per_class=4", "data.synthetic.num_subjects=4",
    "data.synthetic.num_frames=20", "data.num_frames=12", "data.num_bodies=1", "model.name=ctrgcn_tiny",
    "train.batch_size=8", "train.eval_batch_size=16", "train.progress=false", "train.trackers=[jsonl]",
    "train.epochs=1", "optim.name=adamw", "optim.warmup_epochs=0", "method=zeroshot",
    "zeroshot.text_max_length=128",
]  # fmt: skip


@pytest.mark.usefixtures("text_cache")
def test_zeroshot_trains_on_every_class_without_a_held_out_list(tmp_path, text_dir, train_tiny):
    cfg = load_experiment(
        None, TINY + [f"output_dir={tmp_path / 'run'}", f"zeroshot.text_encoder=sentence:{text_dir}"]
    )
    one_source = load_experiment(None, TINY + [f"output_dir={tmp_path / 'one'}", "zeroshot.domain_weight=1",
                                               f"zeroshot.text_encoder=sentence:{text_dir}"])  # fmt: skip
    with pytest.raises(ConfigError, match="domain_weight' needs at least two data.sources"):
        train_tiny(one_source)
    train_tiny(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["num_test"] > 0 and len(saved["classes"]) == 6
    model = SkeletonModel.from_pretrained(tmp_path / "run" / "last")
    assert model.classes == saved["classes"]  # every class is a training class
    assert model.config.text["zeroshot"]["unseen_classes"] == []
    assert saved["chance_top1"] == pytest.approx(1 / 6)  # the test split is scored over all 6


@pytest.mark.usefixtures("text_cache")
def test_a_two_source_joint_space_model_reads_2d_and_3d_input(tmp_path, text_dir, train_tiny):
    srcs = (
        "data.sources=[{dataset: synthetic, name: a}, {dataset: synthetic, name: b, weight: 3, use: train}]"
    )
    cfg = load_experiment(None, TINY + [f"output_dir={tmp_path / 'run'}", f"zeroshot.text_encoder=sentence:{text_dir}",
                                        srcs, "data.spatial_dims=2", "zeroshot.domain_weight=0.5",
                                        "data.augment.layout_dropout=0.5", "data.augment.score_jitter=0.3",
                                        "train.log_every=1"])  # fmt: skip
    from llmskel.engine.data import build_data, make_loaders

    b = build_data(cfg.data, 0)
    assert len(b.classes) == 6 and b.sample_weights is not None  # same names: one class each
    loader, _ = make_loaders(b, 8, 8, 0, 0)
    assert loader.sampler.__class__.__name__ == "WeightedRandomSampler"
    train_tiny(cfg)
    model = SkeletonModel.from_pretrained(tmp_path / "run" / "last")
    assert model.layout == JOINT_SPACE and model.config.preprocessing["spatial_dims"] == 2
    # the domain-adversarial term trained a head over the two sources and was logged
    assert model.heads["domain_head"][-1].out_features == 2
    logs = [json.loads(line) for f in (tmp_path / "run" / "logs").glob("*.jsonl") for line in f.open()]
    assert any("train/domain_ce" in r for r in logs)
    from llmskel.data.synthetic import generate_sample

    s3 = generate_sample("clap")  # NTU-25, 3D: projected frontally
    coco = SkeletonSample(coded("coco17", frames=12), "coco17")  # 2D pixels
    ranks = model.classify([s3, coco], ["clap", "kick", "sit down"], top_k=3)
    assert [len(r.top_k) for r in ranks] == [3, 3]


@pytest.mark.usefixtures("text_cache")
def test_a_pretraining_run_without_a_test_split_saves_best_and_last_and_a_fine_tune_starts_from_it(
    tmp_path, text_dir, train_tiny, caplog
):
    # every source is use: train (configs/kinect3d_pretrain.yaml): no test split, best/ chosen on
    # validation. Such a run once finished without writing any model folder.
    srcs = (
        "data.sources=[{dataset: synthetic, name: a, use: train}, {dataset: synthetic, name: b, use: train}]"
    )
    cfg = load_experiment(None, TINY + [f"output_dir={tmp_path / 'pre'}", f"zeroshot.text_encoder=sentence:{text_dir}",
                                        srcs, "data.spatial_dims=3", "data.val_fraction=0.25"])  # fmt: skip
    result = train_tiny(cfg)
    assert "val_top1" in result and "top1" not in result  # no test metric is made up
    for folder in ("best", "last"):
        model = SkeletonModel.from_pretrained(tmp_path / "pre" / folder)
        assert model.layout == JOINT_SPACE
        assert "val_top1" in model.config.training["metrics"]
        assert "test_top1" not in model.config.training["metrics"]
    assert (
        "no test split"
        in SkeletonModel.from_pretrained(tmp_path / "pre" / "best").config.training["model_selection"]
    )
    metrics = json.loads((tmp_path / "pre" / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and 0 <= metrics["best_val_top1"] <= 1 and "val_top1" in metrics

    # the fine-tune (configs/ucla_ctrgcn_gap_finetune.yaml): one dataset read in the same joint
    # space, its encoder from the pre-training; the classifier (other classes) starts fresh
    ft = load_experiment(None, TINY + [f"output_dir={tmp_path / 'ft'}", "method=supervised", "data.joint_space=true",
                                       "data.synthetic.num_classes=5", f"model.init_from={tmp_path / 'pre' / 'last'}"])  # fmt: skip
    native = load_experiment(None, TINY + [f"output_dir={tmp_path / 'nat'}", "method=supervised",
                                           f"model.init_from={tmp_path / 'pre' / 'last'}"])  # fmt: skip
    # the native NTU-25 layout: the weights do not fit, an error rather than a mostly fresh model
    with pytest.raises(
        ConfigError, match=r"trained on layout omni25 \(3D\), this run reads ntu25.*joint_space: true"
    ):
        train_tiny(native)
    with caplog.at_level("INFO", logger="llmskel.methods.supervised"):
        out = train_tiny(ft)
    assert 0 <= out["test_top1"] <= 1
    tuned = SkeletonModel.from_pretrained(tmp_path / "ft" / "last").encoder.state_dict()
    msg = next(r.getMessage() for r in caplog.records if "encoder tensors from" in r.getMessage())
    # every encoder tensor but the new classifier came from the pre-training (none skipped for shape)
    assert msg == (f"initialised {len(tuned) - 2} encoder tensors from {tmp_path / 'pre' / 'last'}; "
                   "kept fresh: ['head.weight', 'head.bias']")  # fmt: skip
