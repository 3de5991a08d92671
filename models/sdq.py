"""SDQ (Huang et al., ICML 2022), phase 1: the mixed-precision strategy from Differentiable
Bitwidth Parameters, with the expected latency of the accelerator as the complexity term.

Every searched layer has a DBP for its weights and one for its input activations (activations
are this project's extension: bit-serial latency depends on both widths; a tensor read by two
layers -- a block's first convolution and its shortcut -- has one activation quantizer and so
one DBP). A DBP holds the active pair ``(b, b-1)`` and ``beta = sigmoid(theta)``, the
probability of ``b``. Confirmed by the paper: the stochastic choice between adjacent widths,
phase 1 learning the strategy, phase 2 (QAT with the frozen strategy, EBR and KD; here
``bitmill train --bits-file``) training it. Documented choices (unconfirmed details):

* forward: ``g * Q_b(x) + (1 - g) * Q_{b-1}(x)`` with the binary Concrete (Gumbel-sigmoid)
  sample ``g = sigmoid((theta + log u - log(1-u)) / TAU)``, ``u ~ U(0, 1)``, ``TAU = 1``; in
  evaluation ``g = [beta >= 0.5]``;
* widths decay from 8: every ``decay_every`` steps (4) and at the end of every epoch, a DBP
  with ``beta < DECAY_BELOW`` (0.5) moves to the pair ``(b-1, b-2)`` and restarts at
  ``theta = THETA_INIT`` (``beta`` 0.88); at the floor (``--min-bits``) the width stays.
  A DBP needs about ``THETA_INIT / dbp_lr`` Adam steps to fall below 0.5, so steps and DBP
  learning rate bound how far widths can fall in a run. Measured on ResNet-20 / Fashion-MNIST,
  budget 0.35 x W8A8 on ulx3s-85f, 2 epochs of 5,000 images: decay every 16 steps with DBP
  learning rate 0.2 ended at 0.572 x W8A8, every 4 with 0.2 at 0.495, every 4 with 0.5 at
  0.337 (within budget); the defaults are 4 and 0.5;
* quantizers: one learned clipping range ``alpha`` per tensor serves every width: weights
  ``clamp(round(w / s), -2^(b-1), 2^(b-1)-1) * s`` with ``s = alpha / 2^(b-1)``; activations
  ``clamp(round(x / s), 0, 2^b-1) * s`` with ``s = alpha / (2^b - 1)``; straight-through
  rounding, ``alpha`` starts at ``max|w|`` (weights) and the first batch's 99.9th percentile
  (activations);
* loss: ``cross-entropy + LAMBDA * max(0, E[cycles] - budget) / budget`` where ``E[cycles]`` is
  the sum over searched layers of ``sum_{w,a} P(w) P(a) cycles_l(w, a)`` from the latency table
  (the layers each searched layer governs, `bitmill.sim.latency`) plus the cycles no searched
  layer governs;
* the policy is the more probable width of every DBP after the last epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bitmill.errors import BitmillError
from bitmill.models import checkpoint, data
from bitmill.models.resnet import QResNet
from bitmill.models.sensitivity import layer_modules
from bitmill.models.quantizer import round_ste
from bitmill.models.train import device as train_device

TAU = 1.0
THETA_INIT = 2.0
DECAY_BELOW = 0.5
TOP_BITS = 8
ACT_PERCENTILE = 0.999

Pair = tuple[int, int]


class DBP(nn.Module):
    """A differentiable bit-width parameter between ``bits`` and ``bits - 1``."""

    def __init__(self, floor: int, bits: int = TOP_BITS):
        super().__init__()
        if not 1 <= floor <= bits <= TOP_BITS:
            raise ValueError(f"widths must satisfy 1 <= floor <= bits <= {TOP_BITS}, not {floor}, {bits}")
        self.floor = floor
        self.theta = nn.Parameter(torch.tensor(THETA_INIT))
        self.register_buffer("bits", torch.tensor(bits))

    @property
    def high(self) -> int:
        return int(self.bits)

    @property
    def at_floor(self) -> bool:
        return self.high <= self.floor

    def probs(self) -> dict[int, torch.Tensor]:
        """Width -> probability (differentiable in ``theta``)."""
        if self.at_floor:
            return {self.high: torch.ones(())}
        beta = torch.sigmoid(self.theta)
        return {self.high: beta, self.high - 1: 1 - beta}

    def gate(self, generator: torch.Generator | None) -> torch.Tensor:
        """The weight of ``Q_bits`` in the mixture (a Concrete sample in training)."""
        if self.at_floor:
            return torch.ones(())
        if not self.training:
            return (self.theta >= 0).to(self.theta.dtype)
        u = torch.rand((), generator=generator).clamp(1e-6, 1 - 1e-6)
        return torch.sigmoid((self.theta + torch.log(u) - torch.log1p(-u)) / TAU)

    def decay(self) -> bool:
        """Move to the next lower pair when ``beta`` fell below `DECAY_BELOW`."""
        if self.at_floor or float(torch.sigmoid(self.theta.detach())) >= DECAY_BELOW:
            return False
        with torch.no_grad():
            self.bits.fill_(self.high - 1)
            self.theta.fill_(THETA_INIT)
        return True

    @property
    def chosen(self) -> int:
        """The more probable width."""
        return self.high if self.at_floor or float(self.theta.detach()) >= 0 else self.high - 1


class _SDQQuantizer(nn.Module):
    signed = False

    def __init__(self, floor: int):
        super().__init__()
        self.dbp = DBP(floor)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))
        self.generator: torch.Generator | None = None

    def _grid(self, b: int) -> tuple[int, int, int]:
        """(lowest code, highest code, divisor of alpha)."""
        return (-(2 ** (b - 1)), 2 ** (b - 1) - 1, 2 ** (b - 1)) if self.signed else (0, 2 ** b - 1, 2 ** b - 1)

    def _fake(self, x: torch.Tensor, b: int) -> torch.Tensor:
        lo, hi, div = self._grid(b)
        s = self.alpha.abs().clamp(min=1e-8) / div
        return round_ste(torch.clamp(x / s, lo, hi)) * s

    def _init(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self._init(x)
        b = self.dbp.high
        if self.dbp.at_floor:
            return self._fake(x, b)
        g = self.dbp.gate(self.generator)
        return g * self._fake(x, b) + (1 - g) * self._fake(x, b - 1)


class SDQWeight(_SDQQuantizer):
    """Signed weights, the width chosen by the DBP."""
    signed = True

    def _init(self, w: torch.Tensor) -> None:
        with torch.no_grad():
            self.alpha.fill_(max(float(w.abs().max()), 1e-6))
            self.initialized.fill_(True)


class SDQAct(_SDQQuantizer):
    """Unsigned activations (after ReLU), the width chosen by the DBP."""

    def _init(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            flat = x.detach().flatten()
            k = max(1, int(ACT_PERCENTILE * flat.numel()))
            self.alpha.fill_(max(float(flat.kthvalue(k).values), 1e-6))
            self.initialized.fill_(True)


def attach(model: QResNet, searched: tuple[str, ...], floor: int,
           act_floor: int | None = None) -> tuple[dict[str, SDQWeight], dict[str, SDQAct]]:
    """Put SDQ quantizers on ``model`` (an LSQ W8A8 network): the weights of every searched
    layer (their widths decay to ``floor`` at the lowest) and the activations each reads (to
    ``act_floor``, default ``floor``). Returns both by layer name (tied layers share one
    activation quantizer)."""
    act_floor = floor if act_floor is None else act_floor
    convs = layer_modules(model)
    weights = {}
    for name in searched:
        weights[name] = convs[name].wq = SDQWeight(floor)
    acts: dict[str, SDQAct] = {}
    blocks = list(model.blocks)
    model.act_stem = acts[f"{blocks[0].name}.conv1"] = SDQAct(act_floor)
    for i, block in enumerate(blocks):
        block.act1 = acts[f"{block.name}.conv2"] = SDQAct(act_floor)
        if i + 1 < len(blocks):
            nxt = blocks[i + 1]
            block.act_out = acts[f"{nxt.name}.conv1"] = SDQAct(act_floor)
            if nxt.downsample is not None:
                acts[f"{nxt.name}.downsample"] = block.act_out
    missing = [n for n in searched if n not in acts]
    if missing:
        raise ValueError(f"no activation quantizer found for {missing[0]}")
    for m in (*weights.values(), *acts.values()):
        m.to(next(model.parameters()).device)
    return weights, acts


def expected_cycles(costs: Mapping[str, Mapping[Pair, float]], weights: Mapping[str, SDQWeight],
                    acts: Mapping[str, SDQAct]) -> torch.Tensor:
    """``sum_l sum_{w,a} P(w) P(a) costs[l][(w, a)]`` (differentiable in every ``theta``)."""
    total = torch.zeros(())
    for layer, table in costs.items():
        pw, pa = weights[layer].dbp.probs(), acts[layer].dbp.probs()
        for w, p in pw.items():
            for a, q in pa.items():
                total = total + p * q * float(table[(w, a)])
    return total


def policy_of(weights: Mapping[str, SDQWeight], acts: Mapping[str, SDQAct]) -> dict[str, Pair]:
    """The more probable width pair of every searched layer."""
    return {l: (weights[l].dbp.chosen, acts[l].dbp.chosen) for l in weights}


def search_epoch(model: QResNet, weights, acts, costs, constant: float, budget: float, lam: float,
                 opt, train: data.Dataset, batch_size: int, seed: int,
                 epoch: int, progress: Callable[[str], None] | None = None, decay_every: int = 4) -> dict:
    """One epoch of phase 1 with the width decay every ``decay_every`` steps and at its end.
    Returns the epoch's figures."""
    model.train()
    dev = next(model.parameters()).device
    losses, step, decayed = [], 0, []
    dbps = [(n, q.dbp) for n, q in [*weights.items(), *acts.items()]]
    quantizers = (*weights.values(), *{id(a): a for a in acts.values()}.values())
    for x, y in data.batches(train, batch_size, seed * 1000 + epoch, True):
        x, y = x.to(dev), y.to(dev)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 10_007 + step)
        for q in quantizers:
            q.generator = gen
        e = expected_cycles(costs, weights, acts) + constant
        loss = F.cross_entropy(model(x), y) + lam * torch.relu(e - budget) / budget
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if progress:
            progress(f"epoch {epoch + 1}: step {step}, loss {losses[-1]:.3f}, expected {float(e.detach()):,.0f} cycles")
        if step % decay_every == 0:
            decayed += [n for n, d in {id(d): (n, d) for n, d in dbps}.values() if d.decay()]
    decayed += [n for n, d in {id(d): (n, d) for n, d in dbps}.values() if d.decay()]
    return {"epoch": epoch + 1, "loss": float(sum(losses) / max(1, len(losses))),
            "expected_cycles": float(expected_cycles(costs, weights, acts).detach() + constant),
            "decayed": sorted(decayed), "policy": {l: f"w{w}a{a}" for l, (w, a) in policy_of(weights, acts).items()}}


def base_model(model_name: str) -> QResNet:
    """The LSQ W8A8 network (first and last layer 8-bit) that `attach` equips."""
    from bitmill.models.bits import BitAssignment
    from bitmill.models.methods import Method
    from bitmill.models.resnet import build_model
    return build_model(model_name, Method.parse("lsq"), BitAssignment.parse("w8a8", 8))


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines a phase-1 run (a resumed run must have the same)."""

    model: str
    init: str
    floor: int
    epochs: int
    lr: float
    dbp_lr: float
    lam: float
    budget: float
    batch_size: int
    seed: int
    train_images: int
    dataset: str
    decay_every: int = 4
    act_floor: int | None = None     # the activations' floor (None: ``floor``)


def _settings_record(settings: SearchSettings) -> dict:
    """The settings as a checkpoint records them (``act_floor`` only where it differs from
    ``floor``, so checkpoints written before it existed still resume)."""
    d = asdict(settings)
    if d["act_floor"] in (None, d["floor"]):
        del d["act_floor"]
    return d


def _optimizers(model: QResNet) -> list[torch.optim.Optimizer]:
    """SGD (momentum 0.9) for weights, steps and ranges; Adam for the DBPs, whose gradients
    are small (the latency term is divided by the budget)."""
    thetas = [p for n, p in model.named_parameters() if n.endswith("dbp.theta")]
    ids = {id(p) for p in thetas}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [torch.optim.SGD(rest, lr=1.0, momentum=0.9), torch.optim.Adam(thetas, lr=1.0)]


class _Both:
    """The two optimizers stepped as one (learning rates set per epoch)."""

    def __init__(self, opts: list[torch.optim.Optimizer]):
        self.opts = opts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None) -> None:
        for o in self.opts:
            o.step()


def run_phase1(settings: SearchSettings, searched: tuple[str, ...], costs, constant: float,
               train: data.Dataset, ck_path: Path, resume: bool,
               progress: Callable[[str], None] | None = None,
               stop_after: int | None = None) -> tuple[dict[str, Pair], list[dict], float]:
    """Phase 1 from the FP checkpoint ``settings.init`` (or resumed from ``ck_path``, written
    atomically after every epoch): the policy, the per-epoch history and the wall seconds of
    every epoch run so far (resumed calls included). ``stop_after`` ends after that many
    epochs of this call (tests of resuming)."""
    torch.manual_seed(settings.seed)
    model = base_model(settings.model).to(train_device())      # CUDA where present (the samples stay on the CPU)
    weights, acts = attach(model, searched, settings.floor, settings.act_floor)
    opts = _optimizers(model)
    start, history, seconds = 0, [], 0.0
    if resume and ck_path.exists():
        ck = checkpoint.load(ck_path)
        if ck.get("settings") != _settings_record(settings):
            raise BitmillError(f"{ck_path} was written by a search with other settings; use another -o")
        model.load_state_dict(ck["model"])
        for o, st in zip(opts, ck["optimizers"]):
            o.load_state_dict(st)
        start, history, seconds = ck["epoch"], ck["history"], float(ck.get("seconds", 0.0))
    else:
        ck = checkpoint.load(settings.init)
        state = ck.get("model") if isinstance(ck.get("model"), dict) else {}
        checkpoint.load_compatible(model, {k: v for k, v in state.items() if ".wq." not in k}, settings.init,
                                   settings.model)     # ranges and steps start on the first batch
    for epoch in range(start, settings.epochs):
        if stop_after is not None and epoch - start >= stop_after:
            break
        for g in opts[0].param_groups:
            g["lr"] = settings.lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * epoch / settings.epochs)).item())
        for g in opts[1].param_groups:
            g["lr"] = settings.dbp_lr
        t0 = time.perf_counter()
        history.append(search_epoch(model, weights, acts, costs, constant, settings.budget, settings.lam,
                                    _Both(opts), train, settings.batch_size, settings.seed, epoch, progress,
                                    settings.decay_every))
        seconds += time.perf_counter() - t0
        checkpoint.save(ck_path, {"settings": _settings_record(settings), "model": model.state_dict(),
                                  "optimizers": [o.state_dict() for o in opts], "epoch": epoch + 1,
                                  "history": history, "seconds": seconds})
    return policy_of(weights, acts), history, seconds
