"""ST-GCN: spatial temporal graph convolutional network (Yan et al., AAAI 2018).

Written from the paper. A block is a spatial graph convolution over the K subsets of the layout's
graph (K = 3 for the spatial partition), ``y = sum_k W_k (x A_k) `` with a learnable edge-importance
mask ``M`` (``A_k`` replaced by ``A_k * M_k``), then BN, ReLU, a (9 x 1) temporal convolution, BN
and dropout, plus a residual connection and ReLU. Aggregation follows the paper's convention:
``(x A_k)[w] = sum_v x[v] A_k[v, w]`` (with ``Graph``'s column-normalised ``A_k`` a joint receives
the mean over its neighbours in the subset). The head is global average pooling over time, joints
and bodies, then a linear classifier.

Speed (see :mod:`llmskel.models.common`): the graph aggregation is done before the 1x1 conv
(exact: both are linear; the per-subset conv biases become a bias that depends on the output joint
through the column sums of ``A_k``), so the aggregation runs on C_in channels instead of K * C_out,
as one product with the stacked (K*V, V) adjacency, and the K per-subset convs become one matrix
product over the (channel, subset) rows. The
parameter count is the paper's: 3.1 M on NTU-60 with edge importance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import BlockResidual, SkeletonEncoder, TemporalConv, pointwise, stage_plan
from .registry import register_model


def _bn_init(bn: nn.modules.batchnorm._BatchNorm) -> None:
    nn.init.normal_(bn.weight, 1.0, 0.02)
    nn.init.zeros_(bn.bias)


class STGCNBlock(BlockResidual, nn.Module):
    """Spatial graph conv, temporal conv, residual, on channel-major (C_in, B, V, T)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: Tensor,
        stride: int = 1,
        kernel_size: int = 9,
        dropout: float = 0.0,
        residual: bool = True,
        edge_importance: bool = True,
    ):
        super().__init__()
        k = A.shape[0]
        self.num_subsets = k
        self.register_buffer("A", A.clone(), persistent=False)  # (K, V, V)
        # the paper's graph conv: a 1x1 conv C_in -> K*C_out, one (C_out, C_in) matrix per subset
        self.gcn_weight = nn.Parameter(torch.empty(k, out_channels, in_channels))
        self.gcn_bias = nn.Parameter(torch.zeros(k, out_channels))
        self.edge_importance = nn.Parameter(torch.ones_like(A)) if edge_importance else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.tconv = TemporalConv(out_channels, out_channels, kernel_size, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = dropout
        self.init_residual(in_channels, out_channels, stride, residual)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # as the paper's code: conv weights N(0, 0.02), zero biases; BN weights N(1, 0.02), zero bias
        nn.init.normal_(self.gcn_weight, 0.0, 0.02)
        nn.init.zeros_(self.gcn_bias)
        nn.init.normal_(self.tconv.weight, 0.0, 0.02)
        nn.init.zeros_(self.tconv.bias)
        bns = [self.bn1, self.bn2]
        if self.res_proj is not None:
            nn.init.normal_(self.res_proj.weight, 0.0, 0.02)
            nn.init.zeros_(self.res_proj.bias)
            bns.append(self.res_bn)
        for bn in bns:
            _bn_init(bn)

    def graph_conv(self, x: Tensor) -> Tensor:
        """(B, C_in, V, T) -> (B, C_out, V, T): ``sum_k W_k (x A_k) + bias``."""
        k, cout, cin = self.gcn_weight.shape
        b, _, v, t = x.shape
        A = self.A if self.edge_importance is None else self.A * self.edge_importance  # (K, V, W)
        stacked = A.transpose(1, 2).reshape(k * v, v)  # rows (k, w): stacked[(k, w), v] = A_k[v, w]
        # aggregate first: (B*C_in, K*W, T) is (B, C_in*K, W, T) with rows (c_in, k)
        agg = torch.bmm(stacked.expand(b * cin, k * v, v), x.reshape(b * cin, v, t))
        weight = self.gcn_weight.permute(1, 2, 0).reshape(cout, cin * k)  # [c_out, (c_in, k)]
        y = pointwise(agg.view(b, cin * k, v, t), weight)  # (B, C_out, W, T)
        # sum_k bias_k (1^T A_k): the per-subset biases pass through the aggregation
        bias = self.gcn_bias.t() @ A.sum(1)  # (C_out, W)
        return y.add_(bias.view(1, cout, v, 1))

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, V, T) -> (B, C_out, V, T / stride)
        y = F.relu(self.bn1(self.graph_conv(x)))
        y = self.bn2(self.tconv(y))
        if self.dropout > 0:
            y = F.dropout(y, self.dropout, self.training)
        return self.add_residual_relu(x, y)


@register_model("stgcn")
class STGCN(SkeletonEncoder):
    """ST-GCN encoder. See the module docstring; config keys are the constructor's arguments.

    Args (besides :class:`~llmskel.models.common.SkeletonEncoder`'s):
        base_channels: width of the first stage (64).
        stage_blocks: blocks per stage (``[4, 3, 3]``); widths double and time halves per stage.
        temporal_kernel: temporal kernel size (9).
        dropout: dropout inside the blocks after the first (0.5 in the paper's NTU setting).
        edge_importance: learnable edge-importance weighting of the graph (True).
        drop_out: dropout before the classifier (0).
    """

    arch = "stgcn"

    def __init__(
        self,
        layout: str = "ntu25",
        in_channels: int = 3,
        num_classes: int = 60,
        num_bodies: int = 2,
        base_channels: int = 64,
        stage_blocks: list[int] | tuple[int, ...] = (4, 3, 3),
        temporal_kernel: int = 9,
        dropout: float = 0.5,
        edge_importance: bool = True,
        drop_out: float = 0.0,
        graph_mode: str = "spatial",
        data_bn_per_body: bool = False,
    ):
        super().__init__(layout, in_channels, num_classes, num_bodies, data_bn_per_body, graph_mode)
        A = self.adjacency()
        blocks, cin = [], in_channels
        for i, (cout, stride) in enumerate(stage_plan(base_channels, stage_blocks)):
            blocks.append(
                STGCNBlock(
                    cin,
                    cout,
                    A,
                    stride=stride,
                    kernel_size=temporal_kernel,
                    dropout=dropout if i > 0 else 0.0,
                    residual=i > 0,
                    edge_importance=edge_importance,
                )
            )
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cin
        self._build_head(drop_out)
        _bn_init(self.data_bn)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, 0.0, 0.02)
            nn.init.zeros_(self.classifier.bias)
