"""Integer export: a trained `QResNet` -> compiler IR `Graph`.

Weights become integer codes in their encoding (signed, or the odd grid); each BatchNorm, the
weight and input steps, DAQ's output gain and the *next* quantizer's affine map fold into the
per-channel requant multiplier/shift/bias, never into the low-bit weights::

    code_out = round(gain * (g_c * S * acc + h_c) + offset)
             ~ round_shift(acc * M_c + B_c, n_c),  M_c / 2^n_c = gain*g_c*S,  B_c = (gain*h_c + offset)*2^n_c

with ``S = s_w * s_in (* |beta_out|)``, ``g_c = gamma_c / sqrt(var_c + eps)``,
``h_c = beta_c - g_c * mean_c``. Residual adds bring each branch to the output step with its
own multiplier; the classifier emits int32 logits in units of ``s_w * s_in``.
"""

from __future__ import annotations

import numpy as np
import torch

from bitmill import numerics
from bitmill.errors import BitmillError
from bitmill.numerics import Encoding
from bitmill.compiler.ir import (Add, Conv2d, Dense, Flatten, GlobalAvgPool, Graph, Input,
                                 MaxPool, Requant, TensorType)
from bitmill.models.layers import QConv2d
from bitmill.models.quantizer import Affine
from bitmill.models.resnet import QResNet

LOGIT_BITS = 32
IMAGE = Affine(255.0, 0.0, 1.0 / 255.0, 8, Encoding.UNSIGNED)   # x in [0,1] -> 8-bit code


def _requant(mult: np.ndarray, bias: np.ndarray) -> Requant:
    m, n = numerics.quantize_scales(mult)
    b = np.rint(bias * np.exp2(n.astype(np.float64))).astype(np.int64)
    return Requant(m, b, n)


class _Exporter:
    def __init__(self, model: QResNet, image_shape: tuple[int, int, int]):
        self.nodes = [Input("input", (), TensorType(image_shape, 8, Encoding.UNSIGNED, IMAGE.scale))]
        self.aff = {"input": IMAGE}
        self.shape = {"input": image_shape}

    def conv(self, name: str, x: str, conv: QConv2d, out: Affine, relu: bool) -> str:
        q = conv.wq.quantize(conv.weight.detach())
        s = q.scale * self.aff[x].scale
        if conv.out_gain is not None:
            s *= abs(float(conv.out_gain.detach()))
        bn = conv.bn
        g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
        h = bn.bias.detach().double().numpy() - g * bn.running_mean.detach().double().numpy()
        req = _requant(out.gain * g * s, out.gain * h + out.offset)
        codes = q.codes.numpy()
        probe = Conv2d(name, (x,), TensorType((1,), out.bits, out.encoding), codes, q.bits,
                       q.encoding, req, relu, conv.stride, conv.padding)
        shape = probe.infer_shape([self.nodes_out(x)])
        return self._add(Conv2d(name, (x,), TensorType(shape, out.bits, out.encoding, out.scale),
                                codes, q.bits, q.encoding, req, relu, conv.stride, conv.padding), out)

    def add(self, name: str, a: str, b: str, out: Affine) -> str:
        sa, sb = (out.gain * self.aff[t].scale for t in (a, b))
        ma, mb, shift = numerics.add_multipliers(sa, sb)
        bias = int(round(out.offset * 2.0 ** shift))
        t = TensorType(self.nodes_out(a).shape, out.bits, out.encoding, out.scale)
        return self._add(Add(name, (a, b), t, ma, mb, bias, shift, True), out)

    def maxpool(self, x: str) -> str:
        t = self.nodes_out(x)
        probe = MaxPool("maxpool", (x,), t, 3, 2, 1)
        out = TensorType(probe.infer_shape([t]), t.bits, t.encoding, t.scale)
        return self._add(MaxPool("maxpool", (x,), out, 3, 2, 1), self.aff[x])

    def pool_fc(self, x: str, pool_q: Affine, model: QResNet) -> str:
        t = self.nodes_out(x)
        c, hw = t.shape[0], t.shape[1] * t.shape[2]
        req = _requant(np.full(c, pool_q.gain * self.aff[x].scale / hw), np.full(c, pool_q.offset))
        p = self._add(GlobalAvgPool("avgpool", (x,), TensorType((c, 1, 1), pool_q.bits,
                                    pool_q.encoding, pool_q.scale), req), pool_q)
        f = self._add(Flatten("flatten", (p,), TensorType((c,), pool_q.bits, pool_q.encoding,
                                                           pool_q.scale)), pool_q)
        q = model.fc.wq.quantize(model.fc.weight.detach())
        step = q.scale * pool_q.scale
        if model.fc.out_gain is not None:
            step *= abs(float(model.fc.out_gain.detach()))
        bias = np.rint(model.fc.linear.bias.detach().double().numpy() / step).astype(np.int64)
        k = q.codes.shape[0]
        out = TensorType((k,), LOGIT_BITS, Encoding.SIGNED, step)
        return self._add(Dense("fc", (f,), out, q.codes.numpy(), q.bits, q.encoding,
                               Requant(np.ones(k), bias, np.zeros(k)), False), None)

    def nodes_out(self, name: str) -> TensorType:
        return next(n.out for n in self.nodes if n.name == name)

    def _add(self, node, aff: Affine | None) -> str:
        self.nodes.append(node)
        self.aff[node.name] = aff
        return node.name


def export(model: QResNet, image_shape: tuple[int, int, int] = (1, 28, 28)) -> Graph:
    """The integer graph that the trained (quantized) ``model`` implements, verified."""
    if model.method.is_fp:
        raise BitmillError("a full-precision model has no integer form; train it with a quantizer "
                           "(e.g. --quantizer lsq --init FP_CHECKPOINT) before export")
    model = model.eval()
    e = _Exporter(model, image_shape)
    x = e.conv("conv1", "input", model.conv1, model.act_stem.affine(), True)
    if model.maxpool:
        x = e.maxpool(x)
    for blk in model.blocks:
        h = e.conv(f"{blk.name}.conv1", x, blk.conv1, blk.act1.affine(), True)
        r = e.conv(f"{blk.name}.conv2", h, blk.conv2, blk.res.affine(), False)
        sc = x if blk.downsample is None else \
            e.conv(f"{blk.name}.downsample", x, blk.downsample, blk.res_down.affine(), False)
        x = e.add(f"{blk.name}.add", r, sc, blk.act_out.affine())
    out = e.pool_fc(x, model.act_pool.affine(), model)
    return Graph(tuple(e.nodes), out, f"{model.arch.name}-{model.method.name}-{model.bits.label}").verify()
