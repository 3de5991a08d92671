"""Training: full-precision pre-training and quantization-aware fine-tuning, resumable.

One `TrainConfig` describes a run. Training uses every CPU core (``BITMILL_THREADS`` sets
another thread count, e.g. 1 per process when several runs share a machine). Every epoch ends with a checkpoint written atomically
(model, optimisers, step, history); ``resume`` continues from it and, because the data order
depends only on (seed, epoch) and the learning rate only on the global step, ends with the same
metrics as an uninterrupted run. ``init`` loads the weights of another run of the same
architecture (FP pre-training, or the previous stage of QIL's progressive schedule).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from bitmill.errors import BitmillError
from bitmill.fileio import atomic_write_text
from bitmill.models.distill import ebr_loss, kd_loss
from bitmill.models import checkpoint, data
from bitmill.models.bits import BitAssignment
from bitmill.models.methods import Method
from bitmill.models.quantizer import _Quantizer
from bitmill.models.resnet import QResNet, arch, build_model

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
MAX_WIDTH = 256            # channels of the first stage (ResNet-18's standard is 64)
MAX_BATCH = 8192           # images per step (the training set has 60,000)
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    model: str = "resnet20"
    width: int = 16
    quantizer: str = "fp"
    bits: str = "w4a4"
    first_last: int | None = 8
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool = True
    dataset: str = "fashion-mnist"
    layer_bits: tuple[tuple[str, str], ...] = ()    # per-layer overrides, e.g. (("fc", "w8a8"),)
    teacher: str | None = None   # SDQ phase 2: distil from this (full-precision) checkpoint
    ebr: float = 0.0             # SDQ phase 2: weight of the bin regulariser (models/distill.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_bits", tuple((str(n), str(b)) for n, b in self.layer_bits))
        Method.parse(self.quantizer)
        self.assignment
        for key, top in (("epochs", 10_000), ("batch_size", MAX_BATCH), ("width", MAX_WIDTH),
                         ("seed", MAX_SEED)):
            v, lo = getattr(self, key), 0 if key == "seed" else 1
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= top:
                raise BitmillError(f"{key} must be an integer in {lo}..{top}, not {v!r}")
        for key, lo in (("lr", 0.0), ("weight_decay", 0.0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not (v > lo if key == "lr" else v >= lo):
                raise BitmillError(f"{key} must be a finite number {'>' if key == 'lr' else '>='} 0, "
                                   f"not {v!r}")
        known = arch(self.model, self.width).gemm_layers()
        unknown = [n for n, _ in self.layer_bits if n not in known]
        if unknown:
            raise BitmillError(f"layer {unknown[0]!r} is not a conv/dense layer of {self.model}; "
                               f"its layers are {', '.join(known)}")
        if isinstance(self.ebr, bool) or not isinstance(self.ebr, (int, float)) or not math.isfinite(self.ebr) \
                or self.ebr < 0:
            raise BitmillError(f"ebr must be a finite number >= 0, not {self.ebr!r}")
        if self.dataset not in ("fashion-mnist", "synthetic"):
            raise BitmillError(f"dataset must be fashion-mnist or synthetic, not {self.dataset!r}")

    @property
    def method(self) -> Method:
        return Method.parse(self.quantizer)

    @property
    def assignment(self) -> BitAssignment:
        base = BitAssignment.parse(self.bits, self.first_last)
        return BitAssignment(base.default, base.first_last, self.layer_bits)

    def build(self) -> QResNet:
        return build_model(self.model, self.method, self.assignment, self.width)


def load_data(cfg: TrainConfig) -> tuple[data.Dataset, data.Dataset]:
    """(train, test) sets of the run, subsets seeded."""
    if cfg.dataset == "synthetic":
        return data.synthetic(cfg.train_subset or 256, seed=1), data.synthetic(cfg.test_subset or 128, seed=2)
    train = data.fashion_mnist("train").subset(cfg.train_subset, seed=cfg.seed)
    test = data.fashion_mnist("test").subset(cfg.test_subset, seed=cfg.seed)
    return train, test


def _optimizers(model: QResNet, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """SGD for weights (decay on conv/linear weights only); quantizer parameters get their
    method's optimiser: SGD at the method's learning-rate factor, or Adam (DAQ)."""
    quant = {id(p): q for q in model.quantizers() for p in q.parameters()}
    decay, no_decay, q_sgd, q_adam = [], [], {}, []
    for name, p in model.named_parameters():
        q = quant.get(id(p))
        if q is None and name.endswith("out_gain"):
            q_adam.append(p) if model.method.weight == "daq" else no_decay.append(p)
        elif q is None:
            (decay if name.endswith("weight") and p.dim() > 1 else no_decay).append(p)
        elif getattr(q, "optimizer", "sgd") == "adam":
            q_adam.append(p)
        else:
            q_sgd.setdefault(getattr(q, "lr_factor", 1.0), []).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "base_lr": cfg.lr},
              {"params": no_decay, "weight_decay": 0.0, "base_lr": cfg.lr}]
    groups += [{"params": ps, "weight_decay": 0.0, "base_lr": cfg.lr * f} for f, ps in q_sgd.items()]
    opts = [torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)]
    if q_adam:
        from bitmill.models.daq import ADAM_LR
        opts.append(torch.optim.Adam([{"params": q_adam, "base_lr": ADAM_LR}], lr=ADAM_LR))
    return opts


def _set_lr(opts, step: int, total: int) -> None:
    """Cosine decay over the whole run, a function of the global step only."""
    f = 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * f


@torch.no_grad()
def predict(model: QResNet, ds: data.Dataset, batch_size: int = 500) -> np.ndarray:
    """Fake-quant (or FP) predicted classes of a dataset."""
    model.eval()
    dev = next(model.parameters()).device
    return np.concatenate([model(x.to(dev)).argmax(1).cpu().numpy()
                           for x, _ in data.batches(ds, batch_size, None)])


def device() -> torch.device:
    """CUDA when a device is present, else the CPU (all its cores)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name() -> str:
    """Where training runs, for the records: the CUDA device's name, or the CPU's model and the
    torch threads."""
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name()}"
    from bitmill.provenance import cpu_model
    return f"cpu: {cpu_model()}, {torch.get_num_threads()} threads"


def _config_of(ck: dict, source) -> TrainConfig:
    """The training configuration stored in checkpoint ``ck`` read from ``source``."""
    try:
        return TrainConfig(**ck["config"])
    except (TypeError, KeyError, BitmillError) as exc:
        raise BitmillError(f"{source}: checkpoint configuration not understood "
                           f"({str(exc).strip(chr(39)) or type(exc).__name__})") from None


def _load_state(model: QResNet, state, source) -> None:
    """Every tensor of the model from a checkpoint of the same configuration."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise BitmillError(f"{source}: checkpoint tensors do not match the model "
                           f"({str(exc).splitlines()[0]})") from None


def _init_from(model: QResNet, cfg: TrainConfig, source: str) -> None:
    ck = checkpoint.load(source)
    src = _config_of(ck, source)
    if (src.model, src.width) != (cfg.model, cfg.width):
        raise BitmillError(f"{source} is a checkpoint of another architecture: {src.model} width "
                           f"{src.width}, this run trains {cfg.model} width {cfg.width}")
    state = dict(ck["model"]) if isinstance(ck.get("model"), dict) else {}
    if src.method != cfg.method or (src.assignment != cfg.assignment and cfg.method.act in ("lsq", "dq")):
        qnames = [n for n, m in model.named_modules() if isinstance(m, _Quantizer)]
        state = {k: v for k, v in state.items() if not any(k.startswith(q + ".") for q in qnames)}
    checkpoint.load_compatible(model, state, source, f"{cfg.model} width {cfg.width}")


def _loss(model, x, y, cfg: TrainConfig, teacher) -> torch.Tensor:
    """Cross-entropy, the method's regulariser, and SDQ phase 2's KD and EBR when configured."""
    logits = model(x)
    loss = F.cross_entropy(logits, y) + model.regularizer()
    if teacher is not None:
        with torch.no_grad():
            target = teacher(x)
        loss = loss + kd_loss(logits, target)
    if cfg.ebr:
        loss = loss + cfg.ebr * ebr_loss(model)
    return loss


def _teacher(cfg: TrainConfig):
    if cfg.teacher is None:
        return None
    teacher, tcfg = load_model(cfg.teacher)
    if (tcfg.model, tcfg.width) != (cfg.model, cfg.width):
        raise BitmillError(f"{cfg.teacher} is a checkpoint of {tcfg.model} width {tcfg.width}; the "
                           f"teacher must be {cfg.model} width {cfg.width}")
    return teacher.to(device()).eval()


def _epoch(model, opts, train, cfg, epoch, step, total, progress, teacher=None) -> tuple[float, int]:
    model.train()
    losses = []
    bar = tqdm(data.batches(train, cfg.batch_size, cfg.seed * 1000 + epoch, cfg.augment),
               total=math.ceil(len(train) / cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not (progress and sys.stderr.isatty()), leave=False)
    dev = next(model.parameters()).device
    for x, y in bar:
        x, y = x.to(dev), y.to(dev)
        _set_lr(opts, step, total)
        loss = _loss(model, x, y, cfg, teacher)
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
        model.constrain()
        losses.append(float(loss.detach()))
        step += 1
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    return float(np.mean(losses)), step


def _start(model, opts, cfg: TrainConfig, ck_path: Path, init: str | None, resume: bool):
    """(first epoch, global step, history): fresh, from ``init``, or resumed from ``ck_path``."""
    if resume and ck_path.exists():
        ck = checkpoint.load(ck_path)
        if _config_of(ck, ck_path) != cfg:
            raise BitmillError(f"{ck_path} was written by a run with other settings; use another --out")
        try:
            _load_state(model, ck["model"], ck_path)
            for opt, state in zip(opts, ck["optimizers"], strict=True):
                opt.load_state_dict(state)
            torch.set_rng_state(ck["rng"])
            return ck["epoch"], ck["step"], ck["history"]
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise BitmillError(f"{ck_path}: incomplete or damaged checkpoint "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                               f"use another --out") from None
    if ck_path.exists():
        raise BitmillError(f"{ck_path} exists; pass --resume to continue it or choose another --out")
    if init:
        _init_from(model, cfg, init)
    return 0, 0, []


def _metrics(cfg: TrainConfig, init, history, train_ds, test_ds) -> dict:
    return {"config": asdict(cfg), "revision": cfg.method.revision, "init": init, "history": history,
            "test_accuracy": history[-1]["test_accuracy"] if history else None,
            "train_size": len(train_ds), "test_size": len(test_ds),
            "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])) if history else None}


def train(cfg: TrainConfig, out: str | Path, init: str | None = None, resume: bool = False,
          progress: bool = True, stop_after: int | None = None) -> dict:
    """Run (or resume) training into directory ``out``; return the metrics.
    ``stop_after`` ends after that many epochs of this call (used to test resuming)."""
    ck_path = Path(out) / CHECKPOINT
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(int(os.environ.get("BITMILL_THREADS", 0)) or os.cpu_count() or 1)
    model = cfg.build().to(device())
    train_ds, test_ds = load_data(cfg)
    opts = _optimizers(model, cfg)
    start, step, history = _start(model, opts, cfg, ck_path, init, resume)
    teacher = _teacher(cfg)
    total = cfg.epochs * math.ceil(len(train_ds) / cfg.batch_size)
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and epoch - start >= stop_after:
            return {"stopped_at_epoch": epoch}
        t0 = time.perf_counter()
        loss, step = _epoch(model, opts, train_ds, cfg, epoch, step, total, progress, teacher)
        seconds = time.perf_counter() - t0
        acc = float((predict(model, test_ds) == test_ds.labels).mean())
        history.append({"epoch": epoch + 1, "loss": loss, "test_accuracy": acc, "seconds": seconds,
                        "device": device_name()})
        if progress:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {loss:.4f}, test accuracy {acc:.4f}, "
                  f"{seconds:.0f} s", flush=True)
        checkpoint.save(ck_path, {"config": asdict(cfg), "model": model.state_dict(),
                                  "optimizers": [o.state_dict() for o in opts], "epoch": epoch + 1,
                                  "step": step, "history": history, "rng": torch.get_rng_state()})
    metrics = _metrics(cfg, init, history, train_ds, test_ds)
    atomic_write_text(Path(out) / METRICS, json.dumps(metrics, indent=1))
    return metrics


def load_model(ck_path: str | Path) -> tuple[QResNet, TrainConfig]:
    """The trained model of a checkpoint, in eval mode."""
    ck = checkpoint.load(ck_path)
    cfg = _config_of(ck, ck_path)
    model = cfg.build()
    if "model" not in ck:
        raise BitmillError(f"{ck_path}: checkpoint holds no model weights")
    _load_state(model, ck["model"], ck_path)
    return model.eval(), cfg
