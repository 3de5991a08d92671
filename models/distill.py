"""SDQ phase 2's extra loss terms: knowledge distillation from the full-precision teacher and
entropy-aware bin regularisation (EBR) of the latent weights.

Documented choices (the paper's exact forms are unconfirmed):

* KD: ``KL(softmax(teacher) || softmax(student))`` at temperature 1, added to the cross-entropy
  with weight 1 (``kd_loss``);
* EBR, per quantized layer with a step ``s`` (LSQ): the latent weights in code units
  ``u = w / s`` are assigned to their nearest level ``k``; every occupied level contributes
  ``(mean(u_k) - k)^2 + var(u_k)`` (the bin's mean pulled to its level, its spread shrunk),
  averaged over occupied levels; the occupancy term ``log(L) - H(p)`` keeps the ``L`` levels
  near uniform use, with ``p`` the mean soft assignment ``softmax(-(u - k)^2 / EBR_SOFTNESS)``
  over levels (differentiable); the sum over layers is weighted by ``--ebr`` (SDQ: 0.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EBR_SOFTNESS = 0.5


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """``KL(p_teacher || p_student)``, batch mean."""
    return F.kl_div(F.log_softmax(student_logits, 1), F.log_softmax(teacher_logits, 1),
                    reduction="batchmean", log_target=True)


def bin_regularizer(w: torch.Tensor, step: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """EBR of one weight tensor on the integer grid ``lo..hi`` with step ``step``."""
    u = (w / step.detach()).flatten()
    levels = torch.arange(lo, hi + 1, dtype=u.dtype, device=u.device)
    nearest = torch.clamp(torch.round(u.detach()), lo, hi)
    terms = []
    for k in torch.unique(nearest):
        uk = u[nearest == k]
        var = uk.var(unbiased=False) if uk.numel() > 1 else uk.new_zeros(())
        terms.append((uk.mean() - k) ** 2 + var)
    soft = torch.softmax(-(u[:, None] - levels[None, :]) ** 2 / EBR_SOFTNESS, dim=1).mean(0)
    entropy = -(soft * torch.log(soft.clamp(min=1e-12))).sum()
    return torch.stack(terms).mean() + (math.log(len(levels)) - entropy)


def ebr_loss(model: nn.Module) -> torch.Tensor:
    """EBR summed over every layer whose weight quantizer has a learned ``step`` (LSQ)."""
    total = torch.zeros(())
    for m in model.modules():
        wq = getattr(m, "wq", None)
        step = getattr(wq, "step", None)
        if wq is None or step is None or not bool(getattr(wq, "initialized", True)):
            continue
        lo, hi = wq.grid
        total = total + bin_regularizer(m.weight, step, lo, hi)
    return total
