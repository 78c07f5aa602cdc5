"""CTR-GCN: channel-wise topology refinement graph convolution (Chen et al., ICCV 2021).

Written from the paper. A block is a CTR graph convolution followed by a multi-scale temporal
convolution, with a residual connection around both. The CTR graph convolution, per subset k of
the layout's graph (K = 3 for the spatial partition), computes

* a value transform ``x3_k = W3_k x`` (1x1 conv, C_in -> C_out);
* a topology refinement per sample and channel: ``Q_k = tanh(phi_k(x)[u] - psi_k(x)[v])`` from two
  1x1 convs (C_in -> R) applied to the time-averaged input, lifted to C_out channels by a 1x1
  conv ``xi_k`` (R -> C_out), giving ``A_k[n, c] = PA_k + alpha * xi_k(Q_k)[n, c]`` where ``PA_k`` is
  the (trainable) shared topology initialised with the graph and ``alpha`` a trainable scalar
  starting at 0;
* the channel-wise aggregation ``y[n, c, t, u] = sum_k sum_v A_k[n, c, u, v] x3_k[n, c, t, v]``;

then batch-norm, a residual projection and ReLU. R = C_in / 8 (8 for a 3- or 9-channel input).

Speed (see :mod:`llmskel.models.common` for the layout): ``phi``/``psi`` are applied after
averaging over time (exact: a 1x1 conv commutes with the mean), the value transforms of all
subsets are one matrix product (its bias is applied after the aggregation, through the row sums
of the topology, on a K times smaller tensor), ``xi`` of all subsets one batched product with
``alpha``, ``PA_k`` and the bias folded into it, and the aggregation over all subsets one batched
product over (body, channel) pairs with the subsets stacked into the contraction, with its own
backward so that autograd makes no reordering copy of the topology
(:class:`_ChannelTopologyAggregation`). The parameter count and the function are the paper's
(1.46 M parameters on NTU-60, 1.43 M on NW-UCLA);
``benchmarks/bench_models.py --reference DIR --verify`` checks both against the published code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import BlockResidual, MultiScaleTCN, SkeletonEncoder, pointwise, stage_plan
from .registry import register_model


class _ChannelTopologyAggregation(torch.autograd.Function):
    """``y[b, c] = sum_k (cols[k] @ rows[k, b])[c] @ values[b, c]``, without reordering copies.

    ``cols`` (K, C, R'), ``rows`` (K, B, R', V*U) with the last axis (v, u), ``values`` (B*C, K*V, T)
    with rows (k, v); returns (B*C, U, T). Each subset's topology product writes its strided slot
    of a (B, C, K, V, U) tensor, which the aggregation reads as one (K*V, U) matrix per (b, c),
    transposed; the backward's per-subset products read the topology gradient where it lies.
    Through autograd, the (K, B, C, ...) product and the (b, c)-major aggregation need a reordering
    copy of the topology in the forward and of its gradient in the backward (about 3 % of a
    training step at the NW-UCLA shape on 2 CPU cores).
    """

    @staticmethod
    def forward(ctx, cols: Tensor, rows: Tensor, values: Tensor) -> Tensor:
        k, c, r = cols.shape
        b, vu = rows.shape[1], rows.shape[3]
        v = values.shape[1] // k
        adj = values.new_empty(b, c, k, vu)
        for i in range(k):
            torch.bmm(cols[i].expand(b, c, r), rows[i], out=adj[:, :, i])
        adj = adj.view(b * c, k * v, vu // v)
        ctx.save_for_backward(cols, rows, values, adj)
        return torch.bmm(adj.transpose(1, 2), values)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        cols, rows, values, adj = ctx.saved_tensors
        k, c, r = cols.shape
        b, vu = rows.shape[1], rows.shape[3]
        grad_cols = grad_rows = grad_values = None
        if ctx.needs_input_grad[2]:
            grad_values = torch.bmm(adj, grad)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_adj = torch.bmm(values, grad.transpose(1, 2)).view(b, c, k, vu)
            if ctx.needs_input_grad[0]:
                grad_cols = torch.stack(
                    [torch.bmm(grad_adj[:, :, i], rows[i].transpose(1, 2)).sum(0) for i in range(k)]
                )
            if ctx.needs_input_grad[1]:
                grad_rows = torch.empty_like(rows)
                for i in range(k):
                    torch.bmm(cols[i].t().expand(b, r, c), grad_adj[:, :, i], out=grad_rows[i])
        return grad_cols, grad_rows, grad_values


def channel_topology_aggregation(cols: Tensor, rows: Tensor, values: Tensor) -> Tensor:
    """CTR-GCN's channel-wise aggregation with the topology given as factors; see
    :class:`_ChannelTopologyAggregation`. Under autocast the three operands are cast to the
    autocast dtype first, as ``bmm`` would cast them. Under ``torch.compile`` the same maths runs
    as plain autograd ops (:func:`channel_topology_aggregation_autograd`), which the compiler
    traces and fuses: Dynamo does not trace products into strided ``out=`` slots, and with
    torch 2.14 inductor failed on the custom function."""
    if torch.compiler.is_compiling():
        return channel_topology_aggregation_autograd(cols, rows, values)
    device = values.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        cols, rows, values = cols.to(dtype), rows.to(dtype), values.to(dtype)
        with torch.autocast(device, enabled=False):
            return _ChannelTopologyAggregation.apply(cols, rows, values)
    dtype = torch.promote_types(torch.promote_types(cols.dtype, rows.dtype), values.dtype)
    return _ChannelTopologyAggregation.apply(cols.to(dtype), rows.to(dtype), values.to(dtype))


def channel_topology_aggregation_autograd(cols: Tensor, rows: Tensor, values: Tensor) -> Tensor:
    """:func:`channel_topology_aggregation` through autograd: the topology as (K, B, C, V*U), then
    reordered to one (K*V, U) matrix per (b, c) for the product."""
    k, c, _ = cols.shape
    b, vu = rows.shape[1], rows.shape[3]
    v = values.shape[1] // k
    adj = torch.matmul(cols.unsqueeze(1), rows)  # (K, B, C, V*U)
    adj = adj.view(k, b * c, v * (vu // v)).transpose(0, 1).reshape(b * c, k * v, vu // v)
    return torch.bmm(adj.transpose(1, 2), values)


class CTRGraphConv(nn.Module):
    """CTR graph convolution on (B, C_in, V, T) -> (B, C_out, V, T), with BN, residual and ReLU
    (the paper's ``unit_gcn``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: Tensor,
        adaptive: bool = True,
        rel_reduction: int = 8,
        residual: bool = True,
    ):
        super().__init__()
        k, v, _ = A.shape
        self.num_subsets = k
        self.out_channels = out_channels
        rel = 8 if in_channels in (3, 9) else max(1, in_channels // rel_reduction)
        self.rel_channels = rel
        # phi (conv1) and psi (conv2) of every subset, C_in -> R each; rows (phi/psi, k, r)
        self.query = nn.Linear(in_channels, 2 * k * rel)
        # value transform (conv3) of every subset, C_in -> C_out; rows (c_out, k), see forward
        self.value = nn.Linear(in_channels, out_channels * k)
        # xi (conv4) of every subset, R -> C_out
        self.expand_weight = nn.Parameter(torch.empty(k, out_channels, rel))
        self.expand_bias = nn.Parameter(torch.empty(k, out_channels))
        if adaptive:
            self.PA = nn.Parameter(A.clone())  # (K, V, V), row = receiving joint
        else:
            self.register_buffer("PA", A.clone(), persistent=False)
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        # residual: a projection when the width changes, identity when not, nothing if disabled
        self.residual = residual
        self.down = nn.Linear(in_channels, out_channels) if residual and in_channels != out_channels else None
        self.down_bn = nn.BatchNorm2d(out_channels) if self.down is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # conv weights kaiming-normal with the fan_out of each original 1x1 conv, zero bias; BN 1/0,
        # the block's final BN at 1e-6 so that a fresh block starts close to its residual
        c, r = self.out_channels, self.rel_channels
        nn.init.normal_(self.query.weight, 0.0, math.sqrt(2.0 / r))
        nn.init.normal_(self.value.weight, 0.0, math.sqrt(2.0 / c))
        nn.init.normal_(self.expand_weight, 0.0, math.sqrt(2.0 / c))
        for b in (self.query.bias, self.value.bias, self.expand_bias):
            nn.init.zeros_(b)
        if self.down is not None:
            nn.init.normal_(self.down.weight, 0.0, math.sqrt(2.0 / c))
            nn.init.zeros_(self.down.bias)
            nn.init.ones_(self.down_bn.weight)
            nn.init.zeros_(self.down_bn.bias)
        nn.init.constant_(self.bn.weight, 1e-6)
        nn.init.zeros_(self.bn.bias)

    def topology_factors(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The refined channel-wise topology of every subset, as two factors, and its row sums.

        ``A_k[b, c] = PA_k + alpha * (xi_k(Q_k[b]) + bias_k)[c]`` is ``cols[k] @ rows[k, b]`` with
        ``cols`` (K, C_out, R + 2) and ``rows`` (K, B, R + 2, V*U), whose last axis is (v, u):
        ``rows[k, b, :, v * U + u]`` builds the weight of joint v's value for joint u's output.
        Returns ``cols``, ``rows`` and ``sum_v A`` as (K, B, C_out, U).
        """
        k, c, r = self.num_subsets, self.out_channels, self.rel_channels
        b, _, v, _ = x.shape
        # phi/psi on the time average: exact, a 1x1 conv commutes with the mean over time
        q = pointwise(x.mean(-1), self.query.weight, self.query.bias)  # (B, 2*K*R, V)
        q = q.view(b, 2, k, r, v).permute(1, 2, 0, 3, 4).contiguous()  # (2, K, B, R, V)
        # rel[k, b, r, v, u] = tanh(phi_k(x)[u] - psi_k(x)[v])
        rel = torch.tanh(q[0].unsqueeze(-2) - q[1].unsqueeze(-1)).view(k, b, r, v * v)
        # PA_k + alpha * (xi_k(rel) + bias_k) as ONE product: alpha goes into xi's weight, and two
        # extra rows (PA_k, ones) meet two extra columns (ones, alpha * bias_k)
        rows = torch.cat(
            [
                rel,
                self.PA.transpose(1, 2).reshape(k, 1, 1, v * v).expand(k, b, 1, v * v),
                rel.new_ones(k, b, 1, v * v),
            ],
            2,
        )  # (K, B, R + 2, V*U)
        cols = torch.cat(
            [
                self.alpha * self.expand_weight,
                self.expand_weight.new_ones(k, c, 1),
                (self.alpha * self.expand_bias).unsqueeze(-1),
            ],
            dim=2,
        )  # (K, C, R + 2)
        row_sums = torch.matmul(cols.unsqueeze(1), rows.view(k, b, r + 2, v, v).sum(-2))  # (K, B, C, U)
        return cols, rows, row_sums

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, V, T)
        k, c = self.num_subsets, self.out_channels
        b, _, v, t = x.shape
        values = pointwise(x, self.value.weight)  # (B, C*K, V, T), rows (c, k); bias below
        cols, rows, row_sums = self.topology_factors(x)
        # y[b, c] = sum_k A_k[b, c] @ x_k[b, c]: one product over (b, c), contraction over (k, v)
        y = channel_topology_aggregation(cols, rows, values.view(b * c, k * v, t)).view(b, c, v, t)
        # the value biases, constant over (v, t), pass through the aggregation as
        # sum_k bias_k[c] * sum_v A_k[b, c, u, v]: added to y instead of to the K-times larger values
        bias = (row_sums * self.value.bias.view(c, k).t()[:, None, :, None]).sum(0)  # (B, C, U)
        y = self.bn(y.add_(bias.unsqueeze(-1)))
        if self.down is not None:
            y = y.add_(self.down_bn(pointwise(x, self.down.weight, self.down.bias)))
        elif self.residual:
            y = y.add_(x)
        return F.relu_(y)


class CTRGCNBlock(BlockResidual, nn.Module):
    """CTR graph convolution, multi-scale TCN, block residual (1x1 conv + BN if shape changes)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: Tensor,
        stride: int = 1,
        residual: bool = True,
        adaptive: bool = True,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2),
        rel_reduction: int = 8,
    ):
        super().__init__()
        self.gcn = CTRGraphConv(in_channels, out_channels, A, adaptive=adaptive, rel_reduction=rel_reduction)
        self.tcn = MultiScaleTCN(out_channels, out_channels, kernel_size, stride, tuple(dilations))
        self.init_residual(in_channels, out_channels, stride, residual)
        if self.res_proj is not None:
            nn.init.kaiming_normal_(self.res_proj.weight, mode="fan_out")
            nn.init.zeros_(self.res_proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, V, T) -> (B, C_out, V, T / stride)
        return self.add_residual_relu(x, self.tcn(self.gcn(x)))


@register_model("ctrgcn")
class CTRGCN(SkeletonEncoder):
    """CTR-GCN encoder. See the module docstring; config keys are the constructor's arguments.

    Args (besides :class:`~llmskel.models.common.SkeletonEncoder`'s):
        base_channels: width of the first stage (64).
        stage_blocks: blocks per stage (``[4, 3, 3]``); widths double and time halves per stage.
        temporal_kernel: kernel of the dilated temporal branches (5).
        dilations: one temporal branch per dilation (``[1, 2]``).
        adaptive: train the shared topology ``PA`` (True) or keep the graph fixed.
        rel_reduction: R = C_in / rel_reduction (8).
        drop_out: dropout before the classifier (0).
    """

    arch = "ctrgcn"

    def __init__(
        self,
        layout: str = "ntu25",
        in_channels: int = 3,
        num_classes: int = 60,
        num_bodies: int = 2,
        base_channels: int = 64,
        stage_blocks: list[int] | tuple[int, ...] = (4, 3, 3),
        temporal_kernel: int = 5,
        dilations: list[int] | tuple[int, ...] = (1, 2),
        adaptive: bool = True,
        rel_reduction: int = 8,
        drop_out: float = 0.0,
        graph_mode: str = "spatial",
        data_bn_per_body: bool = True,
    ):
        super().__init__(layout, in_channels, num_classes, num_bodies, data_bn_per_body, graph_mode)
        A = self.adjacency()
        blocks, cin = [], in_channels
        for i, (cout, stride) in enumerate(stage_plan(base_channels, stage_blocks)):
            blocks.append(
                CTRGCNBlock(
                    cin,
                    cout,
                    A,
                    stride=stride,
                    residual=i > 0,
                    adaptive=adaptive,
                    kernel_size=temporal_kernel,
                    dilations=tuple(dilations),
                    rel_reduction=rel_reduction,
                )
            )
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cin
        self._build_head(drop_out)
        nn.init.ones_(self.data_bn.weight)
        nn.init.zeros_(self.data_bn.bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, 0.0, math.sqrt(2.0 / num_classes))
