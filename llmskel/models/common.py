"""Building blocks shared by the skeleton encoders.

Internal layout: ``(B, C, V, T)``, time innermost
------------------------------------------------
Models take ``x`` of shape (N, C, T, V, M) (see :func:`llmskel.data.sample.to_model_input`). Right
after the data batch-norm the encoders move to ``(B, C, V, T)`` with ``B = N * M`` bodies and time
innermost (the papers' code uses (B, C, T, V)), and stay there until pooling. The layout was
chosen for CPU speed:

* CTR-GCN's channel-wise aggregation ``y[b, c] (V, T) = sum_k A_k[b, c] (V, V) @ x_k[b, c] (V, T)``
  becomes ONE batched product over (b, c) with the K subsets stacked into the contraction,
  ``[A_1 .. A_K] (V, K*V) @ [x_1; ..; x_K] (K*V, T)``, when the value transform writes its rows
  in (channel, subset) order: no per-subset products, no sum over subsets, no permute of the
  values; each subset's refined topology is written into its strided slot of the (b, c)-major
  tensor the product reads, and the backward reads the gradient there, so no reordering copy of
  the topology is made through autograd (ATen may still stage a strided write internally);
* ST-GCN's aggregation with a fixed graph is one product of the stacked ``(K*V, V)`` adjacency
  with every (b, c) slice, and its output rows are already in the order the 1x1 conv reads;
* 1x1 convolutions are batched matrix products ``W (C_out, C_in) @ x[b] (C_in, V*T)``, and the
  weights of several 1x1 convolutions that read the same input are stacked into one product;
* temporal convolutions are (1, k) convolutions and max-pools along the last axis (the max-pool
  in channels-last order while training, see :func:`temporal_max_pool`).

All fusions are exact rewrites: parameter counts and the function computed are those of the
papers; only the order of the arithmetic changes (floating-point results agree to rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.graph import Graph
from ..data.layouts import get_layout
from ..errors import SkeletonFormatError


@dataclass
class EncoderOutput:
    """What a skeleton encoder returns.

    Attributes:
        feature: (N, D) the global feature, mean over time, joints and bodies; it feeds the head.
        joint_feature: (N, D, V) mean over time and bodies, kept per joint (part-wise pooling uses
            it). By construction ``joint_feature.mean(-1)`` equals ``feature`` (a mean of equal-size
            group means).
        feature_map: (N, M, D, T', V) the last block's output before pooling (a strided view of it,
            not a copy). ``T'`` is ``T`` divided by the product of the block strides, rounded up.
        logits: (N, num_classes), or None when the model has no head (``num_classes == 0``) or
            when the output comes from ``forward_features``.
    """

    feature: Tensor
    joint_feature: Tensor
    feature_map: Tensor
    logits: Tensor | None = None


# ---------------------------------------------------------------- primitives on (B, C, *S)


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """1x1 convolution: ``x`` (B, C_in, *S), ``weight`` (C_out, C_in) -> (B, C_out, *S)."""
    b, cin = x.shape[:2]
    y = torch.bmm(weight.expand(b, *weight.shape), x.reshape(b, cin, -1))  # (B, C_out, L)
    if bias is not None:
        y.add_(bias.view(1, -1, 1))
    return y.view(b, weight.shape[0], *x.shape[2:])


def batch_norm_rows(x: Tensor, bn: nn.modules.batchnorm._BatchNorm, start: int, stop: int) -> Tensor:
    """Batch-norm of ``x`` (B, stop - start, ...) with channels ``start:stop`` of ``bn``.

    Used where one BN module covers several branches but one branch sees a different set of
    positions (a strided branch). Running statistics are updated in place through the slices.
    """
    if x.shape[1] != stop - start:
        raise ValueError(f"batch_norm_rows: {x.shape[1]} channels for slice {start}:{stop}")
    use_batch = bn.training or bn.running_mean is None
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        if start == 0:  # count the batch once per forward, as the module call would
            bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            momentum = 1.0 / float(bn.num_batches_tracked)
    rm = None if bn.running_mean is None else bn.running_mean[start:stop]
    rv = None if bn.running_var is None else bn.running_var[start:stop]
    w = None if bn.weight is None else bn.weight[start:stop]
    b = None if bn.bias is None else bn.bias[start:stop]
    return F.batch_norm(x, rm, rv, w, b, use_batch, momentum, bn.eps)


def temporal_max_pool(x: Tensor, stride: int = 1) -> Tensor:
    """Max over 3 consecutive frames, stride ``stride``, padding 1: (B, C, V, T) -> (B, C, V, T').

    ``x`` may be a channel slice of a larger tensor. When autograd will need the argmax (grad mode
    on and ``x`` requires grad), the 2-D pool runs in channels-last order, where CPU kernels find
    the argmax vectorised over channels: about 1.4x faster, forward + backward, than the
    channel-first pool at the model's shapes. Otherwise (inference) the 1-D pool over the
    (B, C*V, T) view runs without computing argmax indices at all. Both give the same values and
    gradients; the output's memory order follows the path (use ``reshape``, not ``view``, on it).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        x = x.contiguous(memory_format=torch.channels_last)
        return F.max_pool2d(x, kernel_size=(1, 3), stride=(1, stride), padding=(0, 1))
    b, c, v, t = x.shape
    y = F.max_pool1d(x.reshape(b, c * v, t), kernel_size=3, stride=stride, padding=1)
    return y.view(b, c, v, -1)


class TemporalConv(nn.Conv2d):
    """Convolution along time on (B, C, V, T): kernel (1, k), stride s, dilation d, "same" padding."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"temporal kernel size must be odd, got {kernel_size}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=(1, kernel_size),
            stride=(1, stride),
            padding=(0, dilation * (kernel_size - 1) // 2),
            dilation=(1, dilation),
        )


class MultiScaleTCN(nn.Module):
    """CTR-GCN's multi-scale temporal convolution (from MS-G3D), on (B, C, V, T).

    Branches, each with ``C / (len(dilations) + 2)`` channels, concatenated in this order:
    one per dilation (1x1 conv, BN, ReLU, k x 1 dilated temporal conv, BN); a max-pool branch
    (1x1 conv, BN, ReLU, 3 x 1 max-pool, BN); a plain branch (1x1 conv, BN). Strided blocks
    subsample time in every branch.

    Fusions (exact): the branches' 1x1 convs are one product and their first BNs one BN module
    (``reduce``, ``reduce_bn``); the BNs that end the dilated and max-pool branches are one BN
    module (``out_bn``). In a strided block the plain branch's 1x1 conv is evaluated on all frames
    and then subsampled (a 1x1 conv commutes with subsampling), and its BN uses only the kept
    frames, as the original strided 1x1 conv does.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        stride: int = 1,
        dilations: tuple[int, ...] = (1, 2),
    ):
        super().__init__()
        nb = len(dilations) + 2
        if out_channels % nb != 0:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of the {nb} branches")
        cb = out_channels // nb
        self.branch_channels = cb
        self.stride = stride
        self.reduce = nn.Linear(in_channels, nb * cb)  # (nb*cb, C_in): the branches' 1x1 convs
        self.reduce_bn = nn.BatchNorm2d(nb * cb)
        self.tconvs = nn.ModuleList(TemporalConv(cb, cb, kernel_size, stride, d) for d in dilations)
        self.out_bn = nn.BatchNorm2d((nb - 1) * cb)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # as MS-G3D / CTR-GCN: conv weights kaiming-normal (fan_out of each original conv), zero
        # bias; BN weights N(1, 0.02), zero bias
        nn.init.normal_(self.reduce.weight, 0.0, math.sqrt(2.0 / self.branch_channels))
        nn.init.zeros_(self.reduce.bias)
        for tc in self.tconvs:
            nn.init.kaiming_normal_(tc.weight, mode="fan_out")
            nn.init.zeros_(tc.bias)
        for bn in (self.reduce_bn, self.out_bn):
            nn.init.normal_(bn.weight, 1.0, 0.02)
            nn.init.zeros_(bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, V, T)
        cb, nd = self.branch_channels, len(self.tconvs)
        split = (nd + 1) * cb  # channels of the branches that go through ReLU
        z = pointwise(x, self.reduce.weight, self.reduce.bias)  # (B, nb*cb, V, T)
        if self.stride == 1:
            hidden, plain = self.reduce_bn(z).split([split, cb], dim=1)
        else:
            hidden, plain = z.split([split, cb], dim=1)
            hidden = batch_norm_rows(hidden, self.reduce_bn, 0, split)
            plain = batch_norm_rows(plain[..., :: self.stride], self.reduce_bn, split, split + cb)
        # ReLU per dilated branch: each result is a contiguous (B, cb, V, T) tensor, which the
        # temporal convolutions would otherwise copy out of a channel slice. The max-pool branch
        # pools first and applies its ReLU to the (no larger) pooled tensor: ReLU is monotone, so
        # it commutes with the max, and the gradients are the same (zero where the max is <= 0)
        parts = hidden.split(cb, dim=1)
        outs = [tc(F.relu(parts[i])) for i, tc in enumerate(self.tconvs)]
        outs.append(F.relu_(temporal_max_pool(parts[-1], self.stride)))
        y = self.out_bn(torch.cat(outs, dim=1))  # (B, split, V, T')
        return torch.cat([y, plain], dim=1)  # (B, C_out, V, T')


# ---------------------------------------------------------------- the encoder base class


class BlockResidual:
    """The residual of an ST-GCN / CTR-GCN block, mixed into the block module: identity when the
    shape is kept, else a strided 1x1 projection + BN. The attribute names (``res_proj``,
    ``res_bn``) are part of the checkpoint format; each block initialises ``res_proj`` its way."""

    def init_residual(self, in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
        self.stride = stride
        self.residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.res_proj = nn.Linear(in_channels, out_channels)
            self.res_bn = nn.BatchNorm2d(out_channels)
        else:
            self.res_proj = None

    def add_residual_relu(self, x: Tensor, y: Tensor) -> Tensor:
        # x: the block input (B, C_in, V, T); y: the block output (B, C_out, V, T / stride)
        if self.res_proj is not None:
            xs = x[..., :: self.stride] if self.stride > 1 else x
            y = y.add_(self.res_bn(pointwise(xs, self.res_proj.weight, self.res_proj.bias)))
        elif self.residual:
            y = y.add_(x)
        return F.relu_(y)


class SkeletonEncoder(nn.Module):
    """Base of the graph encoders: input checks, data batch-norm, pooling, head.

    Subclasses build ``self.blocks`` (any module mapping (B, C, V, T) to
    (B, D, V, T')), set ``self.feature_dim = D`` and call :meth:`_build_head`.

    Args:
        layout: skeleton layout name (``llmskel.data.layouts``); the graph is ``Graph(layout)``.
        in_channels: channels per joint (3: x, y, z or x, y, score).
        num_classes: size of the classifier; 0 = no head (``logits`` is None).
        num_bodies: bodies the data batch-norm is sized for; inputs with fewer bodies are padded
            with zero bodies (as NTU's loaders do), more bodies are an error. Features are averaged
            over bodies.
        data_bn_per_body: data batch-norm over M*V*C channels (CTR-GCN) instead of V*C with the
            bodies as batch (ST-GCN).
        graph_mode: ``Graph`` mode (``spatial``: 3 subsets).
    """

    arch: str = ""

    def __init__(
        self,
        layout: str,
        in_channels: int,
        num_classes: int,
        num_bodies: int,
        data_bn_per_body: bool,
        graph_mode: str = "spatial",
    ):
        super().__init__()
        self.layout = get_layout(layout)
        self.graph = Graph(self.layout, mode=graph_mode)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.num_bodies = num_bodies
        self.num_joints = self.layout.num_joints
        self.data_bn_per_body = data_bn_per_body
        if in_channels < 1 or num_bodies < 1 or num_classes < 0:
            raise ValueError(
                f"in_channels and num_bodies must be >= 1 and num_classes >= 0, got "
                f"{in_channels}, {num_bodies}, {num_classes}"
            )
        bn_channels = in_channels * self.num_joints * (num_bodies if data_bn_per_body else 1)
        self.data_bn = nn.BatchNorm1d(bn_channels)
        self.feature_dim = 0
        self.head: nn.Module | None = None
        self.config: dict = {}  # the resolved config, set by the registry's create_model

    def adjacency(self) -> Tensor:
        """The layout's graph, (K, V, V) float32."""
        return torch.from_numpy(self.graph.A.copy())

    def _build_head(self, drop_out: float) -> None:
        if self.num_classes == 0:
            self.head = None
            return
        fc = nn.Linear(self.feature_dim, self.num_classes)
        self.head = nn.Sequential(nn.Dropout(drop_out), fc) if drop_out > 0 else fc

    @property
    def classifier(self) -> nn.Linear | None:
        """The final linear layer of the head (None without head)."""
        if isinstance(self.head, nn.Sequential):
            return self.head[-1]
        return self.head

    # -------------------------------------------------------------- input
    def _check_input(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise SkeletonFormatError(
                None,
                f"expected a batch (N, C, T, V, M) with 5 axes, got shape {tuple(x.shape)}",
                where=f"{type(self).__name__} input",
            )
        n, c, t, v, m = x.shape
        problems = []
        if c != self.in_channels:
            problems.append(f"expected {self.in_channels} channels (axis 1), got {c}")
        if v != self.num_joints:
            problems.append(
                f"expected {self.num_joints} joints (axis 3) of layout {self.layout.name!r}, got {v}"
            )
        if self.data_bn_per_body and m > self.num_bodies:
            problems.append(f"expected at most {self.num_bodies} bodies (axis 4), got {m}")
        if t < 1 or n < 1:
            problems.append(f"empty batch or sequence: shape {tuple(x.shape)}")
        if problems:
            raise SkeletonFormatError(
                None,
                "; ".join(problems) + " (input is (N, C, T, V, M))",
                where=f"{type(self).__name__} input",
            )
        if not x.is_floating_point():
            x = x.float()
        if self.data_bn_per_body and m < self.num_bodies:
            x = F.pad(x, (0, self.num_bodies - m))  # zero bodies, as NTU loaders do
        return x

    def _embed(self, x: Tensor) -> Tensor:
        """Data batch-norm, then (N, C, T, V, M) -> (N*M, C, V, T)."""
        n, c, t, v, m = x.shape
        if self.data_bn_per_body:
            h = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)  # (N, M*V*C, T)
        else:
            h = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T)
        h = self.data_bn(h).view(n, m, v, c, t)
        return h.transpose(2, 3).reshape(n * m, c, v, t)  # (N*M, C, V, T)

    # -------------------------------------------------------------- forward
    def forward_blocks(self, h: Tensor) -> Tensor:
        """(B, C, V, T) -> (B, D, V, T'). Subclasses may override."""
        return self.blocks(h)

    def forward_features(self, x: Tensor) -> EncoderOutput:
        """Features without the head: ``x`` (N, C, T, V, M) -> :class:`EncoderOutput` (logits None)."""
        x = self._check_input(x)
        n, m = x.shape[0], x.shape[-1]
        h = self.forward_blocks(self._embed(x))  # (N*M, D, V, T')
        _, d, v, t = h.shape
        joint = h.mean(-1).view(n, m, d, v).mean(1)  # (N, D, V)
        feature_map = h.view(n, m, d, v, t).transpose(-1, -2)  # (N, M, D, T', V), a view
        return EncoderOutput(feature=joint.mean(-1), joint_feature=joint, feature_map=feature_map)

    def forward(self, x: Tensor) -> EncoderOutput:
        """``x`` (N, C, T, V, M) -> :class:`EncoderOutput` with ``logits`` (None without head)."""
        out = self.forward_features(x)
        if self.head is not None:
            out.logits = self.head(out.feature)
        return out

    def extra_repr(self) -> str:
        return (
            f"layout={self.layout.name!r}, in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"num_bodies={self.num_bodies}, feature_dim={self.feature_dim}"
        )


def stage_plan(base_channels: int, stage_blocks: list[int] | tuple[int, ...]) -> list[tuple[int, int]]:
    """``(out_channels, stride)`` per block: stage i has ``base * 2**i`` channels and its first block
    (for i > 0) has stride 2. ``[4, 3, 3]`` with base 64 is the 10-block ST-GCN / CTR-GCN trunk."""
    if not stage_blocks or any(int(b) < 1 for b in stage_blocks):
        raise ValueError(f"stage_blocks must be a non-empty list of positive ints, got {stage_blocks!r}")
    plan = []
    for i, nblocks in enumerate(stage_blocks):
        for j in range(int(nblocks)):
            plan.append((base_channels * 2**i, 2 if (i > 0 and j == 0) else 1))
    return plan
