"""Published checkpoints -> llmskel model folders.

The CTR-GCN authors released ``.pt`` state dicts (NTU RGB+D 60/120, NW-UCLA) of their module
layout: ``data_bn``, ``l1`` ... ``l10`` (``gcn1.convs.K.conv1..4``, ``gcn1.PA``, ``gcn1.alpha``,
``gcn1.bn``, ``gcn1.down``; ``tcn1.branches.B``; ``residual``) and ``fc``. Our
:class:`~llmskel.models.ctrgcn.CTRGCN` computes the same function with fused weights (one query
and one value projection for all subsets, one reduce convolution and one output BN for all
temporal branches), so converting is a re-arrangement of tensors: :func:`ctrgcn_from_published`
maps every published key to ours, checks every shape, and fails on any key left over on either
side. ``llmskel convert`` writes the result as a model folder.

ST-GCN: not converted. Our ST-GCN is not a key-for-key image of the published ST-GCN (its
edge-importance and partition layout differ), so no exact mapping exists yet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

# dataset name -> (layout, class list module and name, built-in config whose preprocessing the
# published recipe corresponds to)
PUBLISHED_DATASETS = {
    "nw-ucla": ("kinect20", ("llmskel.data.readers.nwucla", "NWUCLA_CLASSES"), "ucla_ctrgcn_cpu", "xview"),
    "ntu60": ("ntu25", ("llmskel.data.readers.ntu", "NTU60_CLASSES"), "ntu60_xsub_ctrgcn", "xsub"),
    "ntu120": ("ntu25", ("llmskel.data.readers.ntu", "NTU120_CLASSES"), "ntu120_xsub_ctrgcn", "xsub"),
}
NUM_BLOCKS = 10


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``.pt`` / ``.pth`` state dict, loaded with ``weights_only=True`` (no pickled code runs);
    ``module.`` prefixes (DataParallel) and a ``state_dict`` / ``model`` wrapper are removed."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal or corrupt archive
        raise CheckpointError(
            f"{p}: not a loadable weights-only PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p}: expected a state dict (names -> tensors), found {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def infer_ctrgcn_shape(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, int]:
    """num_classes, num_joints, num_bodies, in_channels and base_channels from the tensors."""
    try:
        num_classes, width = sd["fc.weight"].shape
        num_joints = sd["l1.gcn1.PA"].shape[-1]
        in_channels = sd["l1.gcn1.convs.0.conv3.weight"].shape[1]
        n_bn = sd["data_bn.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(
            f"{source}: not a CTR-GCN state dict of the published layout (no key {e})"
        ) from None
    if n_bn % (in_channels * num_joints) or width % 4:
        raise CheckpointError(f"{source}: inconsistent CTR-GCN shapes (data_bn {n_bn}, fc width {width})")
    return {"num_classes": int(num_classes), "num_joints": int(num_joints), "in_channels": int(in_channels),
            "num_bodies": n_bn // (in_channels * num_joints), "base_channels": int(width) // 4}  # fmt: skip


def ctrgcn_from_published(sd: dict[str, torch.Tensor], ours: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:  # fmt: skip
    """The published CTR-GCN state dict ``sd`` re-arranged into our key names and shapes.

    ``ours`` is the state dict of our CTRGCN built with the same shape (keys without prefix); the
    result has exactly its keys. Raises :class:`CheckpointError` on a missing or unused published
    key or a shape that differs.
    """
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def get(key: str) -> torch.Tensor:
        if key not in sd:
            raise CheckpointError(f"{source}: missing key {key!r} of the published CTR-GCN layout")
        used.add(key)
        return sd[key]

    def w2(key: str) -> torch.Tensor:  # 1x1 conv weight (out, in, 1, 1) -> matrix
        return get(key)[:, :, 0, 0]

    def put(dst: str, value: torch.Tensor) -> None:
        if dst not in ours:
            raise CheckpointError(f"{source}: internal mapping names {dst!r}, which our CTR-GCN lacks")
        if tuple(ours[dst].shape) != tuple(value.shape):
            raise CheckpointError(f"{source}: {dst} has shape {tuple(value.shape)} from the checkpoint, "
                                  f"ours is {tuple(ours[dst].shape)}")  # fmt: skip
        out[dst] = value.detach().clone().to(ours[dst].dtype)

    def put_bn(dst: str, srcs: list[str]) -> None:
        for attr in ("weight", "bias", "running_mean", "running_var"):
            put(f"{dst}.{attr}", torch.cat([get(f"{s}.{attr}") for s in srcs]))
        counts = [get(f"{s}.num_batches_tracked") for s in srcs if f"{s}.num_batches_tracked" in sd]
        if f"{dst}.num_batches_tracked" in ours:
            out[f"{dst}.num_batches_tracked"] = (
                counts[0].clone() if counts else ours[f"{dst}.num_batches_tracked"]
            )

    put_bn("data_bn", ["data_bn"])
    for i in range(NUM_BLOCKS):
        src, dst = f"l{i + 1}", f"blocks.{i}"
        k = get(f"{src}.gcn1.PA").shape[0]  # graph subsets
        convs = [f"{src}.gcn1.convs.{j}" for j in range(k)]
        put(
            f"{dst}.gcn.query.weight",
            torch.cat([w2(f"{c}.conv1.weight") for c in convs] + [w2(f"{c}.conv2.weight") for c in convs]),
        )
        put(
            f"{dst}.gcn.query.bias",
            torch.cat([get(f"{c}.conv1.bias") for c in convs] + [get(f"{c}.conv2.bias") for c in convs]),
        )
        # our value rows are ordered (c_out, subset)
        put(f"{dst}.gcn.value.weight", torch.stack([w2(f"{c}.conv3.weight") for c in convs], 1).flatten(0, 1))
        put(f"{dst}.gcn.value.bias", torch.stack([get(f"{c}.conv3.bias") for c in convs], 1).flatten())
        put(f"{dst}.gcn.expand_weight", torch.stack([w2(f"{c}.conv4.weight") for c in convs]))
        put(f"{dst}.gcn.expand_bias", torch.stack([get(f"{c}.conv4.bias") for c in convs]))
        put(f"{dst}.gcn.PA", get(f"{src}.gcn1.PA"))
        put(f"{dst}.gcn.alpha", get(f"{src}.gcn1.alpha"))
        put_bn(f"{dst}.gcn.bn", [f"{src}.gcn1.bn"])
        if f"{dst}.gcn.down.weight" in ours:
            put(f"{dst}.gcn.down.weight", w2(f"{src}.gcn1.down.0.weight"))
            put(f"{dst}.gcn.down.bias", get(f"{src}.gcn1.down.0.bias"))
            put_bn(f"{dst}.gcn.down_bn", [f"{src}.gcn1.down.1"])
        # temporal branches: dilated convs 0..nd-1, then max-pool, then 1x1
        nd = sum(1 for key in ours if key.startswith(f"{dst}.tcn.tconvs.") and key.endswith(".weight"))
        br = [f"{src}.tcn1.branches.{b}" for b in range(nd + 2)]
        put(f"{dst}.tcn.reduce.weight", torch.cat([w2(f"{b}.0.weight") for b in br]))
        put(f"{dst}.tcn.reduce.bias", torch.cat([get(f"{b}.0.bias") for b in br]))
        put_bn(f"{dst}.tcn.reduce_bn", [f"{b}.1" for b in br])
        for j in range(nd):
            put(f"{dst}.tcn.tconvs.{j}.weight", get(f"{br[j]}.3.conv.weight").transpose(2, 3))
            put(f"{dst}.tcn.tconvs.{j}.bias", get(f"{br[j]}.3.conv.bias"))
        put_bn(f"{dst}.tcn.out_bn", [f"{br[j]}.3.bn" for j in range(nd)] + [f"{br[nd]}.4"])
        if f"{dst}.res_proj.weight" in ours:
            put(f"{dst}.res_proj.weight", w2(f"{src}.residual.conv.weight"))
            put(f"{dst}.res_proj.bias", get(f"{src}.residual.conv.bias"))
            put_bn(f"{dst}.res_bn", [f"{src}.residual.bn"])
    put("head.weight", get("fc.weight"))
    put("head.bias", get("fc.bias"))

    unused = sorted(set(sd) - used)
    if unused:
        raise CheckpointError(f"{source}: {len(unused)} published keys have no place in our CTR-GCN: {unused[:8]}"
                              f"{' ...' if len(unused) > 8 else ''}")  # fmt: skip
    missing = sorted(set(ours) - set(out))
    if missing:
        raise CheckpointError(f"{source}: our CTR-GCN keys not filled from the checkpoint: {missing[:8]}")
    return out


def convert_published(kind: str, checkpoint: str | os.PathLike, dataset: str, out_dir: str | os.PathLike) -> dict[str, Any]:  # fmt: skip
    """Write a llmskel model folder from a published checkpoint; returns a summary."""
    import importlib

    from ..engine.config import load_experiment
    from ..hub import SkeletonModel, SkeletonModelConfig
    from ..methods.supervised import preprocessing_of
    from .registry import get_model_config

    if kind != "ctrgcn":
        raise CheckpointError(f"--from {kind!r}: only 'ctrgcn' (the CTR-GCN authors' checkpoints) is supported; "
                              "ST-GCN's published layout does not map exactly onto ours")  # fmt: skip
    if dataset not in PUBLISHED_DATASETS:
        raise CheckpointError(f"--dataset {dataset!r}: valid datasets: {', '.join(PUBLISHED_DATASETS)}")
    layout, (mod, attr), recipe, protocol = PUBLISHED_DATASETS[dataset]
    name = Path(checkpoint).name
    sd = read_state_dict(checkpoint)
    shape = infer_ctrgcn_shape(sd, name)
    classes = list(getattr(importlib.import_module(mod), attr))
    if shape["num_classes"] != len(classes):
        raise CheckpointError(
            f"{name}: {shape['num_classes']} classes in the checkpoint, {dataset} has {len(classes)}"
        )
    data_cfg = load_experiment(recipe).data
    arch = dict(get_model_config("ctrgcn"))
    arch.update(layout=layout, in_channels=shape["in_channels"], num_classes=shape["num_classes"],
                num_bodies=shape["num_bodies"], base_channels=shape["base_channels"])  # fmt: skip
    pre = preprocessing_of(data_cfg)
    pre["num_bodies"] = shape["num_bodies"]
    cfg = SkeletonModelConfig(
        model=arch, classes=classes, layout=layout, preprocessing=pre, method="supervised",
        training={"name": f"ctrgcn_{dataset}_published", "dataset": dataset, "protocol": protocol,
                  "source": f"converted from the CTR-GCN authors' published checkpoint {name} (llmskel convert)"},
    )  # fmt: skip
    model = SkeletonModel(cfg)
    ours = model.encoder.state_dict()
    if shape["num_joints"] != ours["blocks.0.gcn.PA"].shape[-1]:
        raise CheckpointError(f"{name}: {shape['num_joints']} joints in the checkpoint; {dataset} ({layout}) has "
                              f"{ours['blocks.0.gcn.PA'].shape[-1]}")  # fmt: skip
    model.encoder.load_state_dict(ctrgcn_from_published(sd, ours, name), strict=True)
    model.eval()
    model.save_pretrained(out_dir)
    return {"out": str(out_dir), "dataset": dataset, "classes": len(classes), "layout": layout,
            "tensors": len(sd), "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip
