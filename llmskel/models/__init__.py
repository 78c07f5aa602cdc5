"""Skeleton encoders behind a registry of JSON configs.

``create_model("ctrgcn", num_classes=10, layout="kinect20")`` builds an encoder; ``list_models()``
names the built-in configs. Encoders take (N, C, T, V, M) and return an :class:`EncoderOutput`.
"""

from .common import EncoderOutput, SkeletonEncoder
from .ctrgcn import CTRGCN
from .registry import create_model, get_model_config, list_archs, list_models, register_model, resolve_config
from .stgcn import STGCN

__all__ = [
    "CTRGCN",
    "STGCN",
    "EncoderOutput",
    "SkeletonEncoder",
    "create_model",
    "get_model_config",
    "list_archs",
    "list_models",
    "register_model",
    "resolve_config",
]
