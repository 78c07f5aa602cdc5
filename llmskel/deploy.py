"""``llmskel convert`` (published checkpoints -> model folder) and ``llmskel export`` (ONNX); heavy
imports happen inside the commands (``llmskel --help`` stays light)."""

from __future__ import annotations

import argparse

from .cli import add_json_flag, emit


def cmd_convert(args: argparse.Namespace) -> int:
    from .models.published import convert_published

    res = convert_published(args.source, args.checkpoint, args.dataset, args.out)
    emit(args, res, f"wrote {res['out']}: CTR-GCN for {res['dataset']} ({res['classes']} classes, "
                    f"{res['parameters']:,} parameters, {res['tensors']} tensors mapped)")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .hub import SkeletonModel
    from .models.onnx_export import check_onnx, example_input, export_onnx

    model = SkeletonModel.from_pretrained(args.model).eval()
    res = export_onnx(model, args.out, dynamic_batch=args.dynamic_batch, opset=args.opset)
    # a check on random input of the model's shape (benchmarks/bench_export.py checks real clips)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(example_input(model, batch=2 if args.dynamic_batch else 1).shape, generator=g)
    try:
        res.update(check_onnx(model, args.out, x))
    except ImportError as e:  # onnxruntime absent: the export stands, the check is skipped
        res["check"] = f"skipped: {e}"
    text = f"wrote {res['out']} ({res['bytes'] / 1e6:.1f} MB); input x {res['input_shape']}, outputs logits, features"
    if "max_abs_diff_logits" in res:
        text += f"\nonnxruntime vs eager: max |diff| logits {res['max_abs_diff_logits']:.2e} (relative {res['max_rel_diff_logits']:.1e})"
    emit(args, res, text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("convert", help="a published checkpoint -> an llmskel model folder")
    p.add_argument("--from", dest="source", required=True, choices=["ctrgcn"],
                   help="whose checkpoint: ctrgcn (the CTR-GCN authors' .pt state dicts)")  # fmt: skip
    p.add_argument("checkpoint", help="the .pt / .pth file (read with torch.load(weights_only=True))")
    p.add_argument("--dataset", required=True, choices=["nw-ucla", "ntu60", "ntu120"],
                   help="what it was trained on (classes, layout and preprocessing follow)")  # fmt: skip
    p.add_argument("--out", required=True, help="model folder to write")
    add_json_flag(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a model folder to ONNX (checked with onnxruntime)")
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--dynamic-batch", action="store_true", help="a variable batch size (default: batch 1)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    add_json_flag(p)
    p.set_defaults(func=cmd_export)
