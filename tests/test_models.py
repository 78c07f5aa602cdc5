"""Skeleton encoders (ST-GCN, CTR-GCN), their registry and their exactness.

The fused implementations are checked against straightforward per-subset / per-branch versions of
the papers' equations written here (float64), so a fusion that changes the function fails.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from llmskel.data.graph import Graph
from llmskel.data.layouts import LAYOUTS
from llmskel.errors import ConfigError, SkeletonFormatError
from llmskel.models import CTRGCN, STGCN, create_model, get_model_config, list_archs, list_models
from llmskel.models.common import MultiScaleTCN
from llmskel.models.ctrgcn import CTRGCNBlock, CTRGraphConv
from llmskel.models.stgcn import STGCNBlock

TINY = ("ctrgcn_tiny", "stgcn_tiny")


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- registry
def test_registry_lists_builtin_configs_and_archs():
    names = list_models()
    for name in ("ctrgcn", "ctrgcn_small", "ctrgcn_tiny", "stgcn", "stgcn_tiny"):
        assert name in names
    assert list_archs() == ["ctrgcn", "stgcn"]
    cfg = get_model_config("ctrgcn")
    assert cfg["arch"] == "ctrgcn" and cfg["num_classes"] == 60
    cfg["num_classes"] = 1  # a copy: the registry is unchanged
    assert get_model_config("ctrgcn")["num_classes"] == 60


def test_typo_in_model_name_suggests_and_lists():
    with pytest.raises(ConfigError) as err:
        create_model("ctrgnc")
    msg = str(err.value)
    assert "'ctrgnc'" in msg and "did you mean 'ctrgcn'" in msg
    assert "stgcn_tiny" in msg  # the valid names are listed


def test_unknown_override_key_names_key_and_valid_keys():
    with pytest.raises(ConfigError) as err:
        create_model("ctrgcn_tiny", num_clases=5)
    msg = str(err.value)
    assert "'num_clases'" in msg and "did you mean 'num_classes'" in msg and "base_channels" in msg
    with pytest.raises(ConfigError, match="arch"):
        create_model("ctrgcn_tiny", arch="stgcn")
    with pytest.raises(ConfigError, match="missing key 'arch'"):
        create_model({"layout": "ntu25"})


def test_config_round_trip_rebuilds_same_model(tmp_path):
    torch.manual_seed(0)
    a = create_model("ctrgcn_tiny", layout="coco17", num_classes=7)
    cfg = json.loads(json.dumps(a.config))  # what a saved config.json holds
    assert cfg["arch"] == "ctrgcn" and cfg["layout"] == "coco17" and cfg["num_classes"] == 7
    torch.manual_seed(0)
    b = create_model(cfg)
    assert b.config == a.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(2, 3, 16, 17, 2)
    a.eval(), b.eval()
    assert torch.equal(a(x).logits, b(x).logits)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    c = create_model(str(path))
    assert c.config == a.config and n_params(c) == n_params(a)


# ---------------------------------------------------------------------------- sizes
def test_full_configs_match_published_parameter_counts():
    # the published code's counts (checked against it by benchmarks/bench_models.py --verify):
    # CTR-GCN 1.46 M on NTU-60 (1,446,672), 1.43 M on NW-UCLA; ST-GCN 3.1 M with edge importance
    ctr = create_model("ctrgcn")
    assert n_params(ctr) == 1_446_672
    assert abs(n_params(ctr) - 1.46e6) / 1.46e6 < 0.02
    assert n_params(create_model("ctrgcn", layout="kinect20", num_classes=10, num_bodies=1)) == 1_426_892
    st = create_model("stgcn")
    assert n_params(st) == 3_098_832
    assert abs(n_params(st) - 3.1e6) / 3.1e6 < 0.02
    # without edge importance: 10 blocks x (3, 25, 25) fewer
    assert n_params(create_model("stgcn", edge_importance=False)) == 3_098_832 - 10 * 3 * 25 * 25


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("bodies", [1, 2])
def test_output_shapes_every_layout_and_body_count(name, layout, bodies):
    v = LAYOUTS[layout].num_joints
    model = create_model(name, layout=layout, num_classes=5, num_bodies=bodies)
    out = model(torch.randn(2, 3, 16, v, bodies))
    d = model.feature_dim
    assert d == 32  # base 8, three stages
    assert out.logits.shape == (2, 5)
    assert out.feature.shape == (2, d)
    assert out.joint_feature.shape == (2, d, v)
    assert out.feature_map.shape == (2, bodies, d, 4, v)  # two stride-2 stages: 16 -> 4 frames
    # by construction: the global feature is the mean of the per-joint features (equal groups)
    torch.testing.assert_close(out.joint_feature.mean(-1), out.feature)
    # and the per-joint feature the mean of the map over bodies and time
    torch.testing.assert_close(out.feature_map.mean(dim=(1, 3)), out.joint_feature)


@pytest.mark.parametrize("name", TINY)
def test_no_head_and_forward_features(name):
    model = create_model(name, num_classes=0)
    assert model.head is None and model.classifier is None
    x = torch.randn(2, 3, 12, 25, 2)
    out = model(x)
    assert out.logits is None and out.feature.shape == (2, model.feature_dim)
    with_head = create_model(name, num_classes=4, drop_out=0.5)
    assert isinstance(with_head.head, torch.nn.Sequential) and with_head.classifier.out_features == 4
    assert with_head.forward_features(x).logits is None
    with_head.head = torch.nn.Linear(with_head.feature_dim, 9)  # methods may swap the head
    assert with_head(x).logits.shape == (2, 9)


# ---------------------------------------------------------------------------- input checks
def test_wrong_joint_count_names_expected_joints():
    model = create_model("ctrgcn_tiny")  # ntu25
    with pytest.raises(SkeletonFormatError) as err:
        model(torch.randn(2, 3, 16, 20, 2))
    msg = str(err.value)
    assert "expected 25 joints" in msg and "'ntu25'" in msg and "got 20" in msg
    with pytest.raises(SkeletonFormatError, match="5 axes"):
        model(torch.randn(2, 3, 16, 25))
    with pytest.raises(SkeletonFormatError, match="expected 3 channels"):
        model(torch.randn(2, 2, 16, 25, 2))
    with pytest.raises(SkeletonFormatError, match="at most 2 bodies"):
        model(torch.randn(2, 3, 16, 25, 3))


def test_fewer_bodies_are_zero_padded():
    torch.manual_seed(0)
    model = create_model("ctrgcn_tiny", num_bodies=2).eval()
    x = torch.randn(2, 3, 16, 25, 1)
    padded = torch.cat([x, torch.zeros_like(x)], dim=-1)
    torch.testing.assert_close(model(x).logits, model(padded).logits)


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4)
    with torch.no_grad():  # alpha starts at 0, which zeroes the gradient of CTR-GCN's xi conv
        for mod in model.modules():
            if isinstance(mod, CTRGraphConv):
                mod.alpha.fill_(0.5)
    out = model(torch.randn(3, 3, 16, 25, 2))
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", TINY)
def test_tiny_model_fits_a_tiny_batch(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, num_bodies=1)
    x, y = torch.randn(6, 3, 16, 25, 1), torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(x).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():  # batch statistics, as in training (25 steps do not settle running stats)
        assert (model(x).logits.argmax(1) == y).all()


@pytest.mark.parametrize("name", TINY)
def test_bf16_autocast_forward_is_finite(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 16, 25, 2))
    assert torch.isfinite(out.logits.float()).all() and torch.isfinite(out.feature.float()).all()
    F.cross_entropy(out.logits.float(), torch.tensor([0, 1])).backward()  # backward runs too


# ---------------------------------------------------------------------------- exactness
def _perturb(module):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def test_ctr_graph_conv_equals_per_subset_formula():
    """Fused CTRGraphConv == the paper's unit_gcn computed subset by subset, in (N, C, T, V)."""
    A = torch.from_numpy(Graph("ntu25").A).double()
    for cin, cout in ((3, 16), (16, 16)):
        g = CTRGraphConv(cin, cout, A).double().train()
        _perturb(g)
        x = torch.randn(2, cin, 25, 7, dtype=torch.float64, requires_grad=True)  # (B, C, V, T)
        got = g(x)
        k, r = g.num_subsets, g.rel_channels
        xt = x.transpose(2, 3)  # (N, C, T, V), the paper's layout
        wq, bq = g.query.weight.view(2, k, r, cin), g.query.bias.view(2, k, r)
        wv, bv = g.value.weight.view(cout, k, cin), g.value.bias.view(cout, k)
        y = 0
        for i in range(k):
            x1 = torch.einsum("rc,nctv->nrtv", wq[0, i], xt).mean(2) + bq[0, i, :, None]  # (N, R, V)
            x2 = torch.einsum("rc,nctv->nrtv", wq[1, i], xt).mean(2) + bq[1, i, :, None]
            x3 = torch.einsum("oc,nctv->notv", wv[:, i], xt) + bv[:, i, None, None]
            rel = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))  # (N, R, V, V)
            m = torch.einsum("or,nruv->nouv", g.expand_weight[i], rel) + g.expand_bias[i, :, None, None]
            adj = m * g.alpha + g.PA[i]
            y = y + torch.einsum("ncuv,nctv->nctu", adj, x3)
        y = F.batch_norm(y, None, None, g.bn.weight, g.bn.bias, training=True, eps=g.bn.eps)
        if g.down is not None:
            res = torch.einsum("oc,nctv->notv", g.down.weight, xt) + g.down.bias[:, None, None]
            y = y + F.batch_norm(res, None, None, g.down_bn.weight, g.down_bn.bias, training=True)
        else:
            y = y + xt
        want = F.relu(y).transpose(2, 3)
        torch.testing.assert_close(got, want)
        # and the same gradients (the aggregation has its own backward)
        _assert_same_grads(got, want, [x, *g.parameters()])


def _assert_same_grads(got, want, inputs):
    upstream = torch.randn_like(want)
    for a, b in zip(
        torch.autograd.grad(got, inputs, upstream, retain_graph=True),
        torch.autograd.grad(want, inputs, upstream),
    ):
        torch.testing.assert_close(a, b)


def test_channel_topology_aggregation_gradcheck():
    """The aggregation's hand-written backward against finite differences, all three inputs."""
    from llmskel.models.ctrgcn import channel_topology_aggregation

    k, c, r, b, v, t = 3, 4, 5, 2, 3, 4
    cols = torch.randn(k, c, r, dtype=torch.float64, requires_grad=True)
    rows = torch.randn(k, b, r, v * v, dtype=torch.float64, requires_grad=True)
    values = torch.randn(b * c, k * v, t, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(channel_topology_aggregation, (cols, rows, values))
    # only some inputs needing grad
    assert torch.autograd.gradcheck(channel_topology_aggregation, (cols.detach(), rows, values.detach()))


def test_channel_topology_aggregation_equals_its_autograd_form(monkeypatch):
    """The custom function == the plain-autograd form used under torch.compile, values and grads;
    and the dispatch picks the plain form while compiling."""
    from llmskel.models import ctrgcn

    torch.manual_seed(0)
    k, c, r, b, v, t = 3, 6, 4, 2, 5, 7
    args = [
        torch.randn(k, c, r, dtype=torch.float64, requires_grad=True),
        torch.randn(k, b, r, v * v, dtype=torch.float64, requires_grad=True),
        torch.randn(b * c, k * v, t, dtype=torch.float64, requires_grad=True),
    ]
    got = ctrgcn.channel_topology_aggregation(*args)
    want = ctrgcn.channel_topology_aggregation_autograd(*args)
    torch.testing.assert_close(got, want)
    _assert_same_grads(got, want, args)
    calls = []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    monkeypatch.setattr(ctrgcn, "channel_topology_aggregation_autograd", lambda *a: calls.append(1) or want)
    assert ctrgcn.channel_topology_aggregation(*args) is want and calls == [1]


@pytest.mark.slow
def test_ctrgcn_block_compiles_without_graph_breaks():
    """train.compile=true: a CTR-GCN block under torch.compile (inductor, CPU) traces in one graph
    and matches eager outputs and gradients."""
    import torch._dynamo

    torch.manual_seed(0)
    blk = CTRGCNBlock(4, 8, torch.from_numpy(Graph("kinect20").A).float(), stride=2).train()
    _perturb(blk)
    x = torch.randn(2, 4, 20, 6, requires_grad=True)
    inputs = [x, *blk.parameters()]
    want = blk(x)
    upstream = torch.randn_like(want)
    want_grads = torch.autograd.grad(want, inputs, upstream)  # before the next forward's BN update
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    got = torch.compile(blk)(x)
    assert not torch._dynamo.utils.counters["graph_break"], dict(torch._dynamo.utils.counters["graph_break"])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    for a, b in zip(torch.autograd.grad(got, inputs, upstream), want_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_ctr_graph_conv_under_cpu_autocast():
    """bf16 autocast: the aggregation computes in bf16 as bmm would, gradients reach fp32 params."""
    torch.manual_seed(0)
    g = CTRGraphConv(8, 16, torch.from_numpy(Graph("ntu25").A).float()).train()
    _perturb(g)
    x = torch.randn(2, 8, 25, 6)
    want = g(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = g(x)
    got.float().sum().backward()
    assert g.expand_weight.grad is not None and g.expand_weight.grad.dtype == torch.float32
    assert g.PA.grad is not None and torch.isfinite(g.PA.grad).all()
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("stride", [1, 2])
def test_multiscale_tcn_equals_separate_branches(stride):
    """Fused MultiScaleTCN == four separate branches (1x1 conv, BN, ...), strided 1x1 conv for the
    plain branch, including the running statistics each branch's BN would keep."""
    c, cb = 16, 4
    tcn = MultiScaleTCN(c, c, kernel_size=5, stride=stride, dilations=(1, 2)).double().train()
    _perturb(tcn)
    x = torch.randn(2, c, 3, 11, dtype=torch.float64, requires_grad=True)  # (B, C, V, T), odd T
    got = tcn(x)
    w, b = tcn.reduce.weight.view(4, cb, c), tcn.reduce.bias.view(4, cb)
    g1, b1 = tcn.reduce_bn.weight.view(4, cb), tcn.reduce_bn.bias.view(4, cb)
    rm = torch.zeros(4, cb, dtype=torch.float64)
    rv = torch.ones(4, cb, dtype=torch.float64)

    def branch_in(i, xs):
        z = torch.einsum("oc,ncvt->novt", w[i], xs) + b[i, :, None, None]
        return F.batch_norm(z, rm[i], rv[i], g1[i], b1[i], training=True, momentum=0.1)

    outs = []
    for i, d in enumerate((1, 2)):
        conv = tcn.tconvs[i]
        h = F.relu(branch_in(i, x))
        outs.append(
            F.conv2d(h, conv.weight, conv.bias, stride=(1, stride), padding=(0, 2 * d), dilation=(1, d))
        )
    outs.append(F.max_pool2d(F.relu(branch_in(2, x)), (1, 3), (1, stride), (0, 1)))
    y = F.batch_norm(torch.cat(outs, 1), None, None, tcn.out_bn.weight, tcn.out_bn.bias, training=True)
    plain = branch_in(3, x[..., ::stride])
    want = torch.cat([y, plain], 1)
    torch.testing.assert_close(got, want)
    # the same gradients (the max-pool branch pools before its ReLU, channels-last in training)
    _assert_same_grads(got, want, [x, *tcn.parameters()])
    torch.testing.assert_close(tcn.reduce_bn.running_mean, rm.flatten())
    torch.testing.assert_close(tcn.reduce_bn.running_var, rv.flatten())
    assert int(tcn.reduce_bn.num_batches_tracked) == 1


@pytest.mark.parametrize("stride", [1, 2])
def test_temporal_max_pool_paths_agree(stride):
    """The training path (channels-last 2-D pool) and the inference path (1-D pool without
    indices) give the pool's values; the training path the reference pool's gradients, ties too."""
    from llmskel.models.common import temporal_max_pool

    torch.manual_seed(0)
    z = torch.randint(-3, 3, (2, 6, 4, 9)).double()  # many ties, all-negative windows
    want = F.max_pool2d(z[:, 2:5], (1, 3), (1, stride), (0, 1))
    with torch.no_grad():
        torch.testing.assert_close(temporal_max_pool(z[:, 2:5], stride), want)
    zg = z.clone().requires_grad_()
    zr = z.clone().requires_grad_()
    got = temporal_max_pool(zg[:, 2:5], stride)  # a channel slice, as in the TCN
    ref = F.max_pool2d(zr[:, 2:5].contiguous(), (1, 3), (1, stride), (0, 1))
    torch.testing.assert_close(got, ref)
    upstream = torch.randn_like(ref)
    got.backward(upstream)
    ref.backward(upstream)
    torch.testing.assert_close(zg.grad, zr.grad)


def test_stgcn_graph_conv_equals_conv_then_aggregate():
    """Aggregate-then-conv (ours) == the paper's 1x1 conv to K*C_out, then sum_k x_k A_k."""
    A = torch.from_numpy(Graph("coco17").A).double()
    blk = STGCNBlock(5, 8, A).double()
    _perturb(blk)
    x = torch.randn(2, 5, 17, 6, dtype=torch.float64)
    got = blk.graph_conv(x)
    Ae = blk.A * blk.edge_importance
    x3 = torch.einsum("koc,ncvt->nkovt", blk.gcn_weight, x) + blk.gcn_bias[None, :, :, None, None]
    want = torch.einsum("nkovt,kvw->nowt", x3, Ae)
    torch.testing.assert_close(got, want)


def test_ctrgcn_init_follows_the_paper():
    torch.manual_seed(0)
    model = create_model("ctrgcn")
    assert isinstance(model, CTRGCN) and isinstance(create_model("stgcn"), STGCN)
    gcn = model.blocks[1].gcn
    assert torch.all(gcn.bn.weight == 1e-6) and torch.all(gcn.alpha == 0)
    torch.testing.assert_close(gcn.PA.detach(), torch.from_numpy(Graph("ntu25").A))
    # kaiming fan_out of the original 64 -> 64 1x1 conv: std sqrt(2 / 64)
    assert abs(gcn.value.weight.std().item() - math.sqrt(2 / 64)) < 0.01
    assert abs(model.classifier.weight.std().item() - math.sqrt(2 / 60)) < 0.02
