"""Streaming recognition: segmentation metrics, segment merging, the tracker, StreamRecognizer (bad input,
bounded memory, the model's own classification code, 2D vs 3D) and ``llmskel stream``."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from llmskel.cli import main as cli_main
from llmskel.data.sample import SkeletonSample
from llmskel.hub import SkeletonModel, SkeletonModelConfig
from llmskel.models import get_model_config
from llmskel.stream import (
    CentroidTracker,
    DimensionMismatchError,
    Segment,
    StreamRecognizer,
    frame_accuracy,
    labels_to_segments,
    segment_f1,
)
from llmskel.stream.commands import text_timeline
from llmskel.stream.recognizer import frames_from_sample, parse_span
from llmskel.stream.segments import SegmentMerger, WindowResult, segments_to_frames


def tiny_model(layout: str = "coco17", classes=("wave", "clap", "kick"), frames: int = 16) -> SkeletonModel:
    arch = dict(get_model_config("ctrgcn_tiny"))
    arch.update(layout=layout, num_classes=len(classes), in_channels=3, num_bodies=1)
    cfg = SkeletonModelConfig(model=arch, classes=list(classes), layout=layout,
                              preprocessing={"num_frames": frames, "num_bodies": 1})  # fmt: skip
    torch.manual_seed(0)
    return SkeletonModel(cfg).eval()


def person(rng, x0: float, v: int = 17) -> list:
    kp = np.concatenate([rng.normal(size=(v, 2)) * 10 + x0, np.full((v, 1), 0.9)], axis=1)
    return kp.tolist()


# ------------------------------------------------------------------------------ metrics
def test_segment_metrics_on_hand_made_cases():
    true = list("aaaabbbbcc")
    assert labels_to_segments(true) == [("a", 0, 3), ("b", 4, 7), ("c", 8, 9)]
    assert labels_to_segments(list("__aa_"), background="_") == [("a", 2, 3)]
    assert frame_accuracy(true, true) == 1.0 and segment_f1(true, true, 0.5) == 1.0
    pred = list("aaabbbbbcc")  # boundary one frame early: IoU a = 3/4, b = 4/5, c = 1
    assert frame_accuracy(pred, true) == pytest.approx(0.9)
    assert segment_f1(pred, true, 0.5) == 1.0
    assert segment_f1(pred, true, 0.8) == pytest.approx(2 / 3)  # a fails at 0.8: P = R = 2/3
    over = list("aabaabbbcc")  # an extra short b inside a: 5 predicted segments, 3 true
    # a(0-1): IoU 2/4, TP at 0.5; b(2): IoU 1/5 FP; a(3-4): a already matched -> FP; b(5-7): 3/4 TP; c TP
    p, r = 3 / 5, 3 / 3
    assert segment_f1(over, true, 0.5) == pytest.approx(2 * p * r / (p + r))
    assert segment_f1(list("____"), list("aaaa"), 0.1, background="_") == 0.0
    assert frame_accuracy(list("ab_x"), list("ab__"), ignore="_") == 1.0


def test_merger_covers_every_frame_once_and_applies_the_threshold():
    classes = ["a", "b"]
    m = SegmentMerger(0, classes, window=8, stride=4, threshold=0.6)
    probs = [(0.9, 0.1), (0.8, 0.2), (0.5, 0.5), (0.1, 0.9), (0.2, 0.8)]
    segs = []
    for i, p in enumerate(probs):
        end = 7 + 4 * i
        segs += m.add(WindowResult(0, max(0, end - 7), end, "", 0.0, np.array(p, np.float32)))
    segs += m.flush(last_frame=25)
    frames = segments_to_frames(segs, 26, fill="?")
    assert "?" not in frames  # every frame 0..25 decided exactly once
    assert [(s.label, s.start, s.end) for s in segs] == [("a", 0, 9), ("no action", 10, 13), ("b", 14, 25)]
    assert segs[0].score == pytest.approx(0.85) and segs[0].windows == 2
    # smoothing 3: the uncertain middle window takes its neighbours' mean
    m = SegmentMerger(0, classes, window=8, stride=4, threshold=0.0, smooth=3)
    segs = []
    for i, p in enumerate([(0.9, 0.1), (0.3, 0.7), (0.9, 0.1)]):
        segs += m.add(WindowResult(0, max(0, 4 * i), 7 + 4 * i, "", 0.0, np.array(p, np.float32)))
    segs += m.flush()
    assert [(s.label, s.start, s.end) for s in segs] == [("a", 0, 15)]


def test_tracker_links_by_distance_keeps_given_ids_and_ends_old_tracks():
    tr = CentroidTracker(max_distance=0.5, max_gap=3)
    a = np.array([[0, 0, 1], [10, 20, 1]], np.float32)
    b = a + [100, 0, 0]
    assert tr.update(0, [a, b]) == [0, 1]
    assert tr.update(1, [b + [2, 0, 0], a + [1, 1, 0]]) == [1, 0]  # order swapped, ids follow the persons
    assert tr.update(2, [a, b], [7, None]) == [7, 1]  # a given id is kept as it is
    assert tr.update(10, [b]) == [2]  # away longer than max_gap: a new id, never one used before (documented)


def test_parse_span():
    assert parse_span("2s", 15, "window") == 30 and parse_span(48, None, "window") == 48
    with pytest.raises(Exception, match="--fps"):
        parse_span("2s", None, "window")


# ------------------------------------------------------------------------------ recognizer
def test_stream_survives_bad_input_and_counts_it():
    rng = np.random.default_rng(0)
    rec = StreamRecognizer(tiny_model(), window=16, stride=4)
    lines = []
    for t in range(60):
        people = [{"id": 7, "keypoints": person(rng, 100)}]
        if 20 <= t < 40:
            people.append({"keypoints": person(rng, 500)})
        lines.append(json.dumps({"frame": t, "layout": "coco17", "people": people}))
    lines[10] = "{bad json"
    lines[12] = json.dumps({"people": [{"keypoints": [[1, 2, 0.5]] * 18}]})  # another joint count
    nan = person(rng, 100)
    nan[3] = [float("nan")] * 3
    lines[14] = json.dumps({"people": [{"id": 7, "keypoints": nan}]}).replace("NaN", "NaN")
    lines[16] = json.dumps({"people": [{"id": 7, "keypoints": person(rng, 100)}, {"id": 9, "keypoints": []}]})
    events = []
    for i, text in enumerate(lines):
        events += rec.push(text, f"line {i + 1}")
    events += rec.flush()
    s = rec.summary()
    assert (
        s["frames"] == 60 and s["frames_dropped"] == 2 and s["nan_joints"] == 1 and s["persons_dropped"] == 1
    )
    wheres = {p["where"]: p["problem"] for p in s["problems"]}
    assert "frame dropped" in wheres["line 11"] and "18 joints" in wheres["line 13"]
    assert "NaN" in wheres["line 15"] and "without keypoints" in wheres["line 17"]
    segs = [e for e in events if isinstance(e, Segment)]
    assert {g.person for g in segs} == {7, 0}
    # person 7 is decided on every frame it was seen in, the second person only while it was there
    f7 = segments_to_frames([g for g in segs if g.person == 7], 60, fill="?")
    assert f7.count("?") == 0
    f0 = [g for g in segs if g.person == 0]
    assert min(g.start for g in f0) == 20 and max(g.end for g in f0) == 39
    assert s["persons"]["7"]["frames"] == 58


def test_window_scores_are_the_models_own_predictions():
    model = tiny_model()
    rng = np.random.default_rng(1)
    frames = [np.asarray(person(rng, 100), np.float32)[None] for _ in range(24)]
    rec = StreamRecognizer(model, window=16, stride=8, input_layout="coco17", min_score=0.0)
    windows = [e for f in frames for e in rec.push(f) if isinstance(e, WindowResult)]
    # a window is due every 8 frames once the person fills half of it (min_present 0.5)
    assert [(w.start, w.end) for w in windows] == [(0, 7), (0, 15), (8, 23)]
    expect = model.predict_proba([np.stack(frames[8:24])])[0]
    np.testing.assert_allclose(windows[2].scores, expect, rtol=1e-5, atol=1e-6)


def test_batched_windows_give_the_same_decisions():
    model = tiny_model()
    rng = np.random.default_rng(2)
    frames = [np.asarray(person(rng, 100), np.float32)[None] for _ in range(64)]

    def run(batch):
        rec = StreamRecognizer(model, window=16, stride=4, batch_windows=batch, input_layout="coco17")
        return [(e.end, e.label, round(e.score, 5)) for e in rec.run(frames) if isinstance(e, WindowResult)]

    assert run(1) == run(8)


def test_memory_stays_bounded_on_a_long_stream_with_people_coming_and_going(monkeypatch):
    monkeypatch.setattr("llmskel.stream.recognizer.MAX_PERSON_STATS", 50)
    model = tiny_model()
    rng = np.random.default_rng(3)
    rec = StreamRecognizer(model, window=16, stride=8, max_gap=5, input_layout="coco17")
    most = 0
    for t in range(3000):
        n = (t // 40) % 3  # 0, 1 or 2 persons, at new places every 40 frames
        x0 = 1000.0 * (t // 40)
        people = [person(rng, x0 + 300 * i) for i in range(n)]
        rec.push({"people": [{"keypoints": p} for p in people]})
        most = max(most, len(rec.persons))
        assert len(rec.pending) <= 1 and all(p.buf.shape[0] == 16 for p in rec.persons.values())
    # at most the 2 persons on screen plus those who left less than max_gap frames ago
    assert most <= 4 and len(rec.tracker.tracks) <= 4
    assert len(rec.stats) == 50  # 75 persons came and went; statistics of the first 50 are kept
    assert rec.summary()["windows"] > 100


def test_a_2d_input_is_never_fed_to_a_3d_model():
    model3d = tiny_model("kinect20")
    rec = StreamRecognizer(model3d, window=16, stride=8)
    with pytest.raises(
        DimensionMismatchError,
        match=r"2D \(x, y, score\) \(layout coco17\).*3D \(x, y, z\) \(layout kinect20\)",
    ):
        rec.push({"people": [{"keypoints": [[1.0, 2.0, 0.9]] * 17}]})
    with pytest.raises(DimensionMismatchError, match="model trained on 2D data"):
        StreamRecognizer(model3d, input_layout="openpose25")


def test_body25_input_feeds_a_coco_model():
    rng = np.random.default_rng(5)
    rec = StreamRecognizer(tiny_model("coco17"), window=8, stride=8)
    for _ in range(8):
        kp = np.asarray(person(rng, 100, v=25))
        rec.push({"people": [{"pose_keypoints_2d": kp.ravel().tolist()}]})
    assert rec.input_layout == "openpose25" and rec.summary()["windows"] == 1


def test_few_shot_mode_uses_the_support_set():
    model = tiny_model("kinect20")
    rng = np.random.default_rng(6)
    support = [rng.normal(size=(16, 1, 20, 3)).astype(np.float32) for _ in range(4)]
    rec = StreamRecognizer(model, support=support[:2], support_labels=["left", "right"], window=16, stride=16)
    events = list(rec.run(frames_from_sample(SkeletonSample(support[1], "kinect20"))))
    w = [e for e in events if isinstance(e, WindowResult)][0]
    assert rec.classes == ["left", "right"] and rec.summary()["score"] == "cosine"
    assert w.label == "right" and w.score == pytest.approx(1.0, abs=1e-4)  # the support example itself


def test_real_recording_concatenated_ucla_clips(ucla_dir):
    from llmskel.data.readers.nwucla import read_nwucla_file

    files = sorted(ucla_dir.glob("*_v03.json"))[:3]
    clips = [read_nwucla_file(f) for f in files]
    data = np.concatenate([c.data[:, :1] for c in clips])
    rec = StreamRecognizer(tiny_model("kinect20", tuple(f"c{i}" for i in range(10))), window=16, stride=8)
    segs = [
        e for e in rec.run(frames_from_sample(SkeletonSample(data, "kinect20"))) if isinstance(e, Segment)
    ]
    frames = segments_to_frames(segs, len(data), fill="?")
    assert "?" not in frames and rec.summary()["frames"] == len(data)


# ------------------------------------------------------------------------------ command line
def test_stream_cli_json_lines_from_stdin_text_timeline_and_plot(tmp_path, monkeypatch, capsys):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    rng = np.random.default_rng(7)
    lines = [
        json.dumps({"frame": t, "people": [{"id": 1, "keypoints": person(rng, 100)}]}) for t in range(40)
    ]
    lines.insert(5, "not json")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    rc = cli_main(["stream", "--model", str(tmp_path / "m"), "--window", "1s", "--stride", "0.25s", "--fps", "16",
                   "--json", "--windows", "--plot", str(tmp_path / "t.png"), "-"])  # fmt: skip
    assert rc == 0
    captured = capsys.readouterr()
    events = [json.loads(x) for x in captured.out.splitlines()]
    kinds = {e["event"] for e in events}
    assert kinds == {"window", "segment", "summary"} and events[-1]["event"] == "summary"
    assert events[-1]["frames_dropped"] == 1 and events[-1]["window"] == 16 and events[-1]["stride"] == 4
    assert "<stdin> line 6" in captured.err
    assert all("start_s" in e for e in events if e["event"] == "segment")
    assert (tmp_path / "t.png").stat().st_size > 5000

    np.save(tmp_path / "rec.npy", np.asarray([person(rng, 100) for _ in range(40)], np.float32))
    rc = cli_main(["stream", "--model", str(tmp_path / "m"), "--window", "16", "--layout", "coco17",
                   str(tmp_path / "rec.npy")])  # fmt: skip
    out = capsys.readouterr().out
    assert (
        rc == 0
        and "person 0" in out
        and "timeline: 0 .. 40 frames" in out
        and "frames: 40 (dropped 0)" in out
    )


def test_text_timeline_draws_one_letter_per_label():
    segs = [
        Segment(0, 0, 9, "wave", 0.9),
        Segment(0, 10, 19, "no action", 0.1),
        Segment(1, 5, 19, "clap", 0.8),
    ]
    text = text_timeline(segs, 20, width=20)
    rows = text.splitlines()
    assert rows[1] == "person 0   |BBBBBBBBBB..........|" and rows[2] == "person 1   |     AAAAAAAAAAAAAAA|"
    assert "A=clap" in rows[3] and "B=wave" in rows[3] and ".=no action" in rows[3]


@pytest.mark.slow  # trains a tiny zero-shot model (about 30 s on the shared 2-core machine)
def test_zero_shot_mode_scores_the_users_labels(tmp_path, train_tiny, text_cache):
    from llmskel.engine.config import load_experiment
    from llmskel.methods.zero_shot_text import classify
    from llmskel.text.tiny import save_tiny_sentence_encoder

    text_dir = save_tiny_sentence_encoder(tmp_path / "bert16", hidden_size=16, seed=0)
    cfg = load_experiment(None, [
        "data.synthetic.num_classes=4", "data.synthetic.samples_per_class=3", "data.synthetic.num_subjects=2",
        "data.synthetic.num_frames=24", "data.num_frames=16", "data.num_bodies=1", "model.name=ctrgcn_tiny",
        "train.batch_size=8", "train.progress=false", "train.trackers=[jsonl]", "train.epochs=1",
        "method=zeroshot", "zeroshot.unseen=[clap]", "zeroshot.text_max_length=128",
        f"zeroshot.text_encoder=sentence:{text_dir}", f"output_dir={tmp_path / 'run'}",
    ])  # fmt: skip
    res = train_tiny(cfg)
    model = SkeletonModel.from_pretrained(f"{res['run_dir']}/last")
    from llmskel.data.synthetic import generate_sample

    x = generate_sample("clap").data[:32, :1]
    labels = ["clap hands", "jump up"]
    rec = StreamRecognizer(model, labels=labels, window=16, stride=16)
    windows = [
        e for e in rec.run(frames_from_sample(SkeletonSample(x, "ntu25"))) if isinstance(e, WindowResult)
    ]
    assert rec.classes == labels and rec.summary()["mode"] == "zero-shot" and len(windows) == 2
    ranking = {t.label: t.score for t in classify(model, [x[16:32]], labels, top_k=2)[0].top_k}
    np.testing.assert_allclose(windows[1].scores, [ranking[lb] for lb in labels], rtol=1e-5)


def test_min_segment_joins_short_segments_to_their_neighbour():
    def run(labels, min_frames):
        m = SegmentMerger(0, ["a", "b"], window=4, stride=4, min_frames=min_frames)
        segs = []
        for i, lab in enumerate(labels):
            p = np.array([0.9, 0.1] if lab == "a" else [0.1, 0.9], np.float32)
            segs += m.add(WindowResult(0, 4 * i, 4 * i + 3, "", 0.0, p))
        return [(s.label, s.start, s.end) for s in segs + m.flush()]

    flicker = list("aaabaaabbbb")  # one window (4 frames) of b inside a, then a long b
    assert run(flicker, 0) == [("a", 0, 11), ("b", 12, 15), ("a", 16, 27), ("b", 28, 43)]
    assert run(flicker, 5) == [("a", 0, 27), ("b", 28, 43)]
    assert run(list("baaa"), 5) == [("a", 0, 15)]  # a short first segment joins the next one


def test_stream_cli_reads_an_openpose_folder_and_names_a_bad_file(tmp_path, capsys):
    tiny_model("coco17").save_pretrained(tmp_path / "m")
    rng = np.random.default_rng(8)
    folder = tmp_path / "op"
    folder.mkdir()
    for t in range(20):
        kp = np.asarray(person(rng, 100, v=25)).ravel().tolist()
        text = json.dumps({"people": [{"person_id": [-1], "pose_keypoints_2d": kp}]})
        (folder / f"cam_{t:012d}_keypoints.json").write_text("{truncated" if t == 7 else text)
    rc = cli_main(["stream", "--model", str(tmp_path / "m"), "--window", "8", "--json", str(folder)])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.splitlines()[-1])
    assert rc == 0 and summary["frames"] == 20 and summary["frames_dropped"] == 1
    assert summary["input_layout"] == "openpose25" and "cam_000000000007_keypoints.json" in captured.err
