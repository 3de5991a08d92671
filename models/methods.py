"""Quantization methods by name, and the weight/activation pairing of a training run.

``lsq``, ``qil``, ``daq``, ``dq`` name both halves; ``pact`` and ``sawb`` pair as the paper
does (PACT activations with SAWB weights); ``ACT+WEIGHT`` (e.g. ``pact+sawb``, ``lsq+sawb``)
picks each half; ``fp`` trains the full-precision network.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitmill.errors import BitmillError
from bitmill.models.daq import DAQAct, DAQWeight
from bitmill.models.dq import DQAct, DQWeight
from bitmill.models.lsq import LSQAct, LSQWeight
from bitmill.models.pact import PACTAct
from bitmill.models.qil import QILAct, QILWeight
from bitmill.models.quantizer import ActQuantizer, WeightQuantizer
from bitmill.models.sawb import SAWBWeight

WEIGHT_QUANTIZERS: dict[str, type[WeightQuantizer]] = {
    "lsq": LSQWeight, "sawb": SAWBWeight, "qil": QILWeight, "daq": DAQWeight, "dq": DQWeight}
ACT_QUANTIZERS: dict[str, type[ActQuantizer]] = {
    "lsq": LSQAct, "pact": PACTAct, "qil": QILAct, "daq": DAQAct, "dq": DQAct}
PAIRS = {"pact": ("pact", "sawb"), "sawb": ("pact", "sawb")}
NAMES = ("fp", "lsq", "pact", "sawb", "qil", "daq", "dq")


@dataclass(frozen=True)
class Method:
    """Activation and weight quantizer names (``None`` for full precision)."""

    act: str | None
    weight: str | None

    @property
    def is_fp(self) -> bool:
        return self.act is None

    @property
    def name(self) -> str:
        if self.is_fp:
            return "fp"
        return self.act if self.act == self.weight else f"{self.act}+{self.weight}"

    @classmethod
    def parse(cls, text: str) -> "Method":
        t = text.strip().lower()
        if t == "fp":
            return cls(None, None)
        if "+" in t:
            act, _, weight = t.partition("+")
            if act in WEIGHT_QUANTIZERS and weight in ACT_QUANTIZERS and act not in ACT_QUANTIZERS:
                act, weight = weight, act           # "sawb+pact" reads the same
        else:
            act, weight = PAIRS.get(t, (t, t))
        if act not in ACT_QUANTIZERS or weight not in WEIGHT_QUANTIZERS:
            raise BitmillError(f"unknown quantizer {text!r}; choose one of {', '.join(NAMES)} or "
                               f"ACT+WEIGHT with ACT in {', '.join(ACT_QUANTIZERS)} and WEIGHT in "
                               f"{', '.join(WEIGHT_QUANTIZERS)}")
        return cls(act, weight)

    @property
    def revision(self) -> dict[str, int]:
        """Revisions of the two quantizer classes (empty for full precision): results trained
        under another revision are not reused."""
        if self.is_fp:
            return {}
        return {"act": ACT_QUANTIZERS[self.act].revision, "weight": WEIGHT_QUANTIZERS[self.weight].revision}

    def weight_quantizer(self, bits: int) -> WeightQuantizer:
        return WEIGHT_QUANTIZERS[self.weight](bits)

    def act_quantizer(self, bits: int) -> ActQuantizer:
        return ACT_QUANTIZERS[self.act](bits)
