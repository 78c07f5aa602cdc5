"""``llmskel convert --from ctrgcn`` and ``llmskel export --format onnx``."""

from __future__ import annotations

import json

import pytest
import torch

from llmskel.cli import main
from llmskel.errors import CheckpointError
from llmskel.hub import SkeletonModel
from llmskel.models.published import ctrgcn_from_published, read_state_dict


def _bn(sd, name, c, g):
    sd[f"{name}.weight"], sd[f"{name}.bias"] = torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g)
    sd[f"{name}.running_mean"], sd[f"{name}.running_var"] = (
        torch.randn(c, generator=g),
        torch.rand(c, generator=g) + 0.5,
    )
    sd[f"{name}.num_batches_tracked"] = torch.tensor(7)


def published_ctrgcn_state_dict(num_class: int, joints: int, bodies: int, base: int = 64, seed: int = 0):
    """Random tensors under the key names and shapes of the CTR-GCN authors' module layout
    (``model/ctrgcn.py``: data_bn, l1..l10 of unit_gcn + MultiScale_TemporalConv, fc), written
    from that layout, without their code."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cout, cin, kt=1):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = (
            torch.randn(cout, cin, kt, 1, generator=g) * 0.1,
            torch.randn(cout, generator=g) * 0.1,
        )

    _bn(sd, "data_bn", bodies * 3 * joints, g)
    plan = [(3, base, 1), (base, base, 1), (base, base, 1), (base, base, 1), (base, 2 * base, 2),
            (2 * base, 2 * base, 1), (2 * base, 2 * base, 1), (2 * base, 4 * base, 2), (4 * base, 4 * base, 1), (4 * base, 4 * base, 1)]  # fmt: skip
    for i, (cin, cout, stride) in enumerate(plan):
        lp = f"l{i + 1}"
        rel = 8 if cin in (3, 9) else cin // 8
        for k in range(3):
            conv(f"{lp}.gcn1.convs.{k}.conv1", rel, cin)
            conv(f"{lp}.gcn1.convs.{k}.conv2", rel, cin)
            conv(f"{lp}.gcn1.convs.{k}.conv3", cout, cin)
            conv(f"{lp}.gcn1.convs.{k}.conv4", cout, rel)
        if cin != cout:
            conv(f"{lp}.gcn1.down.0", cout, cin)
            _bn(sd, f"{lp}.gcn1.down.1", cout, g)
        sd[f"{lp}.gcn1.PA"] = torch.rand(3, joints, joints, generator=g)
        sd[f"{lp}.gcn1.alpha"] = torch.randn(1, generator=g)
        _bn(sd, f"{lp}.gcn1.bn", cout, g)
        bc = cout // 4
        for b in range(4):
            conv(f"{lp}.tcn1.branches.{b}.0", bc, cout)
            _bn(sd, f"{lp}.tcn1.branches.{b}.1", bc, g)
        for b in range(2):
            conv(f"{lp}.tcn1.branches.{b}.3.conv", bc, bc, kt=5)
            _bn(sd, f"{lp}.tcn1.branches.{b}.3.bn", bc, g)
        _bn(sd, f"{lp}.tcn1.branches.2.4", bc, g)
        if i > 0 and (cin != cout or stride != 1):
            conv(f"{lp}.residual.conv", cout, cin)
            _bn(sd, f"{lp}.residual.bn", cout, g)
    sd["fc.weight"], sd["fc.bias"] = (
        torch.randn(num_class, 4 * base, generator=g),
        torch.randn(num_class, generator=g),
    )
    return sd


def test_convert_maps_every_published_key_and_the_folder_predicts(tmp_path, capsys):
    sd = published_ctrgcn_state_dict(num_class=10, joints=20, bodies=1)
    ckpt = tmp_path / "ucla_joint.pt"
    torch.save({f"module.{k}": v for k, v in sd.items()}, ckpt)  # as saved from DataParallel
    assert (
        main(
            [
                "convert",
                "--from",
                "ctrgcn",
                str(ckpt),
                "--dataset",
                "nw-ucla",
                "--out",
                str(tmp_path / "m"),
                "--json",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["tensors"] == len(sd) and res["classes"] == 10
    model = SkeletonModel.from_pretrained(tmp_path / "m")  # strict load
    enc = model.encoder.state_dict()
    # spot-check the re-arrangement against the source tensors
    assert torch.equal(enc["head.weight"], sd["fc.weight"]) and torch.equal(
        enc["blocks.3.gcn.PA"], sd["l4.gcn1.PA"]
    )
    v = enc["blocks.1.gcn.value.weight"].view(64, 3, 64)  # rows (c_out, subset)
    assert torch.equal(v[:, 2], sd["l2.gcn1.convs.2.conv3.weight"][:, :, 0, 0])
    assert torch.equal(
        enc["blocks.0.tcn.tconvs.1.weight"], sd["l1.tcn1.branches.1.3.conv.weight"].transpose(2, 3)
    )
    assert torch.equal(enc["blocks.0.tcn.out_bn.running_var"][-16:], sd["l1.tcn1.branches.2.4.running_var"])
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["layout"] == "kinect20" and cfg["classes"][0] == "pick up with one hand"
    assert (
        str(tmp_path) not in (tmp_path / "m" / "config.json").read_text()
    )  # no local path in a shareable folder
    from llmskel.data.sample import SkeletonSample

    clip = SkeletonSample(
        data=torch.randn(40, 1, 20, 3, generator=torch.Generator().manual_seed(1)).numpy(), layout="kinect20"
    )
    (pred,) = model.predict([clip], top_k=3)
    assert len(pred) == 3 and all(name in model.classes for name, _ in pred)


def test_convert_refuses_leftover_or_missing_keys_and_pickled_code(tmp_path):
    sd = published_ctrgcn_state_dict(num_class=10, joints=20, bodies=1)
    from llmskel.models import create_model

    ours = create_model("ctrgcn", layout="kinect20", num_classes=10, num_bodies=1).state_dict()
    ctrgcn_from_published(sd, ours)
    with pytest.raises(CheckpointError, match="no place"):
        ctrgcn_from_published({**sd, "l11.extra.weight": torch.zeros(1)}, ours)
    with pytest.raises(CheckpointError, match="missing key 'l5.residual.conv.weight'"):
        ctrgcn_from_published(
            {k: v for k, v in sd.items() if not k.startswith("l5.residual.conv.weight")}, ours
        )
    bad = dict(sd, **{"fc.weight": torch.zeros(10, 8)})
    with pytest.raises(CheckpointError, match="head.weight has shape"):
        ctrgcn_from_published(bad, ours)

    class Evil:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    p = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, p)
    with pytest.raises(CheckpointError, match="weights-only"):
        read_state_dict(p)
    torch.save(sd, tmp_path / "u.pt")  # NW-UCLA's 10 classes, converted as NTU-60
    from llmskel.models.published import convert_published

    with pytest.raises(CheckpointError, match="10 classes in the checkpoint, ntu60 has 60"):
        convert_published("ctrgcn", tmp_path / "u.pt", "ntu60", tmp_path / "o")
    assert (
        main(
            [
                "convert",
                "--from",
                "ctrgcn",
                str(tmp_path / "u.pt"),
                "--dataset",
                "ntu60",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )


@pytest.mark.slow
def test_onnx_export_matches_eager_with_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from llmskel.hub import SkeletonModelConfig
    from llmskel.models import get_model_config
    from llmskel.models.onnx_export import check_onnx, example_input, export_onnx

    arch = dict(get_model_config("ctrgcn_tiny"), layout="kinect20", num_classes=10, num_bodies=1)
    model = SkeletonModel(SkeletonModelConfig(model=arch, classes=[f"c{i}" for i in range(10)], layout="kinect20",
                                              preprocessing={"num_frames": 20, "num_bodies": 1})).eval()  # fmt: skip
    res = export_onnx(model, tmp_path / "m.onnx", dynamic_batch=True)
    assert res["input_shape"] == ["batch", 3, 20, 20, 1]
    x = torch.randn(example_input(model, 3).shape, generator=torch.Generator().manual_seed(0))
    diff = check_onnx(model, tmp_path / "m.onnx", x)  # batch 3, not the traced 2: the batch is dynamic
    assert diff["max_rel_diff_logits"] < 1e-4 and diff["max_abs_diff_features"] < 1e-3
