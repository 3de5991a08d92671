"""Every quantizer: integer grid, gradients against closed forms, valid parameter regions."""

import math

import pytest
import torch

from bitmill import numerics
from bitmill.errors import BitmillError
from bitmill.models.daq import DAQAct, DAQWeight, mse_range, soft_round
from bitmill.models.dq import DQAct, DQWeight
from bitmill.models.lsq import LSQAct, LSQWeight
from bitmill.models.pact import PACTAct
from bitmill.models.qil import QILAct, QILWeight, _interval
from bitmill.models.sawb import SAWBWeight

WEIGHTS = [LSQWeight, SAWBWeight, QILWeight, DAQWeight, DQWeight]
ACTS = [LSQAct, PACTAct, QILAct, DAQAct, DQAct]


def _w(seed=0, shape=(8, 4, 3, 3)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.1


def _x(seed=0, shape=(4, 3, 5, 5)):
    return torch.relu(torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2)


@pytest.mark.parametrize("cls", WEIGHTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bits", range(1, 9))
def test_weight_codes_on_grid_and_forward_matches(cls, bits):
    if bits < cls.min_bits:
        with pytest.raises(BitmillError, match=f"bits must be an integer in {cls.min_bits}..8, not {bits}"):
            cls(bits)
        return
    q = cls(bits)
    w = _w(bits)
    fq = q(w)
    qt = q.quantize(w)
    assert qt.codes.dtype == torch.int64 and qt.bits == bits
    assert numerics.on_grid(qt.codes.numpy(), bits, qt.encoding)
    torch.testing.assert_close(fq.detach(), qt.codes.float() * qt.scale, rtol=1e-5, atol=1e-7)
    assert len(torch.unique(qt.codes)) > 1


@pytest.mark.parametrize("cls", ACTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bits", range(1, 9))
def test_activation_codes_on_grid_and_affine_matches_forward(cls, bits):
    q = cls(bits)
    x = _x(bits)
    q.train()
    q(x)                                   # first batch initialises data-dependent parameters
    q.eval()
    fq = q(x).detach()
    qt = q.quantize(x)
    assert numerics.on_grid(qt.codes.numpy(), bits, qt.encoding)
    close = torch.isclose(fq, qt.codes.float() * qt.scale, rtol=1e-5, atol=1e-6)
    assert close.float().mean() > 0.999      # only exact .5 ties may round differently


def test_signed_residual_quantizer():
    q = LSQAct(8, signed=True).train()
    x = torch.randn(2, 3, 4, 4)
    q(x)
    qt = q.eval().quantize(x)
    assert qt.codes.min() < 0 and numerics.on_grid(qt.codes.numpy(), 8, "signed")


def test_lsq_gradients_equal_closed_form():
    q = LSQWeight(3)
    w = (_w(1) * 3).requires_grad_()
    q(w)                                           # initialise the step
    with torch.no_grad():
        q.step.fill_(0.07)
    up = torch.randn_like(w)
    (q(w) * up).sum().backward()
    s, qn, qp = 0.07, 4, 3
    v = w.detach() / s
    inside = (v >= -qn) & (v <= qp)
    ds = torch.where(inside, -v + torch.round(v), torch.where(v < -qn, -qn * torch.ones_like(v),
                                                               qp * torch.ones_like(v)))
    g = 1 / math.sqrt(w.numel() * qp)
    torch.testing.assert_close(q.step.grad, (up * ds).sum() * g, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w.grad, up * inside.float())


def test_pact_gradients_equal_closed_form():
    q = PACTAct(3, alpha=2.0)
    x = torch.linspace(-1, 4, 101).reshape(1, 1, 1, 101).requires_grad_()
    up = torch.randn_like(x)
    (q(x) * up).sum().backward()
    xd = x.detach()
    torch.testing.assert_close(q.alpha.grad, (up * (xd >= 2.0).float()).sum())
    torch.testing.assert_close(x.grad, up * ((xd >= 0) & (xd < 2.0)).float())
    assert float(q.regularizer().detach()) == pytest.approx(1e-4 * 4.0)


def test_sawb_scale_and_ste():
    w = _w(3).requires_grad_()
    q = SAWBWeight(2)
    alpha = 3.12 * w.detach().pow(2).mean().sqrt() - 2.064 * w.detach().abs().mean()
    assert float(q.alpha(w)) == pytest.approx(float(alpha))
    up = torch.randn_like(w)
    (q(w) * up).sum().backward()
    torch.testing.assert_close(w.grad, up * (w.detach().abs() <= alpha).float())
    assert set(q.quantize(w).codes.unique().tolist()) <= {-3, -1, 1, 3}
    assert SAWBWeight(2, coefficients=(3.212, 2.178)).coefficients == (3.212, 2.178)


def test_qil_weight_transformer_gradients_equal_closed_form():
    c, d, gamma = torch.tensor(0.1, requires_grad=True), torch.tensor(0.06, requires_grad=True), \
        torch.tensor(0.8, requires_grad=True)
    w = torch.linspace(-0.25, 0.25, 97, dtype=torch.float64).float().requires_grad_()
    out = torch.sign(w) * _interval(w.abs(), c, d, gamma)
    up = torch.randn_like(w)
    (out * up).sum().backward()
    wd, cd, dd, gd = w.detach(), 0.1, 0.06, 0.8
    u = (wd.abs() - cd + dd) / (2 * dd)
    inside = ((u > 0) & (u < 1)).float()
    us = torch.where(inside.bool(), u, torch.full_like(u, 0.5))
    sg = torch.sign(wd)
    dw = gd * us ** (gd - 1) / (2 * dd) * inside
    dc = -sg * gd * us ** (gd - 1) / (2 * dd) * inside
    ddd = -sg * gd * us ** (gd - 1) * (wd.abs() - cd) / (2 * dd ** 2) * inside
    dg = sg * us ** gd * torch.log(us) * inside
    torch.testing.assert_close(w.grad, up * dw, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c.grad, (up * dc).sum(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(d.grad, (up * ddd).sum(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gamma.grad, (up * dg).sum(), rtol=1e-4, atol=1e-5)


def test_qil_parameters_stay_valid():
    for q in (QILWeight(3), QILAct(3)):
        opt = torch.optim.SGD(q.parameters(), lr=5.0)
        for i in range(20):
            x = _w(i) if isinstance(q, QILWeight) else _x(i)
            q.train()
            loss = (q(x) - 3 * x).pow(2).sum() * (1 if i % 2 else -1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            q.constrain()
            c, d = float(q.c.detach()), float(q.d.detach())
            assert d > 0 and c - d >= 0
        if isinstance(q, QILWeight):
            assert float(q.gamma.detach()) > 0


def test_daq_forward_equals_hard_rounding_exactly():
    x = torch.rand(10000, dtype=torch.float32) * 15
    t = x - torch.floor(x)
    x = x[(t - 0.5).abs() > 1e-6]                      # rounding ties are a measure-zero set
    torch.testing.assert_close(soft_round(x, 1.0), torch.round(x), rtol=0, atol=0)
    for bits in (1, 2, 4):
        w = _w(bits)
        q = DAQWeight(bits)
        out = q(w).detach()
        m = 2 ** bits - 1
        lo, hi = float(q.lower.detach()), float(q.upper.detach())
        ws = (w - w.mean()) / (w.std() + 1e-8)
        xh = torch.clamp((ws - lo) / ((hi - lo) / m), 0, m)
        torch.testing.assert_close(out, (2 * torch.round(xh) - m) / m, rtol=0, atol=0)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_daq_mse_range_minimises_rounding_error(bits):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(bits))
    m = 2 ** bits - 1

    def mse(c, symmetric, v):
        lo = -c if symmetric else 0.0
        step = (c - lo) / m
        return float(((torch.clamp(torch.round((v - lo) / step), 0, m) * step + lo - v) ** 2).mean())

    for symmetric, v in ((True, x), (False, x.clamp(min=0))):
        c = mse_range(v, bits, symmetric)
        top = float(v.abs().max())
        assert 0 < c <= top
        assert all(mse(c, symmetric, v) <= mse(top * k / 40, symmetric, v) + 1e-12 for k in range(1, 41))
    q = DAQAct(bits)
    q.train()
    q(x.clamp(min=0))
    assert float(q.upper.detach()) == pytest.approx(mse_range(x.clamp(min=0), bits, False))
    paper = DAQAct(bits, init="paper").train()
    paper(x.clamp(min=0))
    assert float(paper.upper.detach()) == pytest.approx(3 * float(x.clamp(min=0).std()))


def test_daq_surrogate_gradient_equals_finite_difference():
    sigma, gamma = 1.0, 2.0
    x = torch.tensor([0.1, 0.3, 0.45, 0.6, 0.8, 1.2, 2.7], dtype=torch.float64, requires_grad=True)
    soft_round(x, sigma, gamma).sum().backward()

    def y(xv, beta):
        t = xv - math.floor(xv)
        m0, m1 = math.exp(-abs(t)), math.exp(-abs(t - 1))
        near = 1.0 if m1 > m0 else 0.0
        s0 = m0 * math.exp(-near ** 2 / sigma ** 2)
        s1 = m1 * math.exp(-(1 - near) ** 2 / sigma ** 2)
        if beta is None:
            beta = gamma / abs(s0 - s1)
        p1 = 1 / (1 + math.exp(-beta * (s1 - s0)))
        c = 1 / (math.exp(gamma) - 1)
        return -c * (1 - p1) + (1 + c) * p1, beta

    for xv, g in zip(x.detach().tolist(), x.grad.tolist()):
        _, beta = y(xv, None)                          # the temperature is held fixed
        h = 1e-6
        fd = (y(xv + h, beta)[0] - y(xv - h, beta)[0]) / (2 * h)
        assert g == pytest.approx(fd, rel=1e-4, abs=1e-6)


def test_dq_gradients():
    q = DQWeight(3)
    w = (_w(4) * 2).requires_grad_()
    q(w)
    with torch.no_grad():
        q.step.fill_(0.05)
    up = torch.randn_like(w)
    (q(w) * up).sum().backward()
    k = torch.clamp(torch.round(w.detach() / 0.05), -4, 3)
    g = 1 / math.sqrt(w.numel() * 3)
    torch.testing.assert_close(q.step.grad, (up * k).sum() * g, rtol=1e-4, atol=1e-6)
    v = w.detach() / 0.05
    torch.testing.assert_close(w.grad, up * ((v >= -4.5) & (v <= 3.5)).float())


def test_dq_activation_extra_loss_trains_the_step_only():
    q = DQAct(3).train()
    x = _x(5).requires_grad_()
    q(x)
    aux = q.regularizer()
    assert float(aux.detach()) > 0 and q.regularizer() == 0.0    # consumed once per step
    q(x)
    aux = q.regularizer()
    gx, gs = torch.autograd.grad(aux, [x, q.step], allow_unused=True)
    assert gx is None and float(gs) != 0.0


def test_qil_projection_keeps_the_clipping_point():
    q = QILWeight(3)
    with torch.no_grad():
        q.c.fill_(0.10)
        q.d.fill_(0.16)                 # an optimizer step left the region c - d >= 0
    q.constrain()
    assert float(q.c.detach()) == pytest.approx(0.13) and float(q.d.detach()) == pytest.approx(0.13)
    with torch.no_grad():
        q.c.fill_(0.3)
        q.d.fill_(0.1)                  # inside the region: unchanged
    q.constrain()
    assert float(q.c.detach()) == pytest.approx(0.3) and float(q.d.detach()) == pytest.approx(0.1)
