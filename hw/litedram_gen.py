"""LiteDRAM's core generator (``python -m litedram.gen``) with a half-rate SDR PHY: run as
``python -m bitmill.hw.litedram_gen CONFIG [litedram.gen's options]``.

LiteDRAM's generator builds an SDR controller only at full rate (``GENSDRPHY``: the chip at
the controller's clock, one 16-bit word per cycle). With ``"sdram_rate": "1:2"`` in CONFIG it
builds the same controller around LiteDRAM's ``HalfRateGENSDRPHY`` instead, as LiteX's own
ULX3S target does with ``--sdram-rate 1:2``: the chip at twice the controller's clock, two DFI
phases per controller cycle, bursts of two words, a native port twice the chip's width. The
changes are the generator's choices that depend on the rate:

- the PHY (``board``): ``HalfRateGENSDRPHY``, whose I/O registers run in a ``sys2x`` domain;
- the core's clocks: ``sys2x`` from an extra input ``clk2x`` (from the same PLL as ``clk``,
  twice its frequency, in phase), both domains reset by ``rst``;
- the module's timings in controller cycles (LiteDRAM's ``rate`` "1:2").

At both rates the simulation model's DFI settings (``--sim``) are those of the board's PHY
itself (LiteDRAM's generator gives the model generic SDR settings, one cycle more read latency
than ``GENSDRPHY``), so that the model presents the controller the same phases, CAS latency and
read latency as the board.
"""

from __future__ import annotations

import sys
from pathlib import Path

HALF_RATE = "1:2"
RATE_KEY = "sdram_rate"


def phy_settings(phy_cls, module_cls, rate: str, data_bits: int, sys_clk_freq: float):
    """The DFI settings of LiteDRAM's SDR PHY ``phy_cls`` for ``data_bits`` of chip
    ``module_cls`` at ``sys_clk_freq``, read from the PHY itself (built on pins that are never
    used)."""
    from migen import Record

    geom = module_cls(sys_clk_freq, rate).geom_settings
    pads = Record([("a", geom.addressbits), ("ba", geom.bankbits), ("cs_n", 1), ("cke", 1), ("ras_n", 1),
                   ("cas_n", 1), ("we_n", 1), ("dm", data_bits // 8), ("dq", data_bits)])
    return phy_cls(pads, sys_clk_freq).settings


def _patch(config: dict, rate: str) -> None:
    import litedram.modules as modules
    import litedram.phy as phys
    import litex.tools.litex_sim as litex_sim
    from litedram.phy.gensdrphy import GENSDRPHY, HalfRateGENSDRPHY

    chip = getattr(modules, config["sdram_module"])
    phy = HalfRateGENSDRPHY if rate == HALF_RATE else GENSDRPHY

    class RatedModule(chip):
        """``chip`` with its timings at the PHY's rate, whatever the generator asks."""

        def __init__(self, clk_freq, rate=None, _rate=rate, **kwargs):
            super().__init__(clk_freq, _rate, **kwargs)

    RatedModule.__name__ = chip.__name__
    setattr(modules, config["sdram_module"], RatedModule)
    litex_sim.get_sdram_phy_settings = \
        lambda memtype, data_width, clk_freq: phy_settings(phy, RatedModule, rate, data_width, clk_freq)
    if rate == HALF_RATE:
        import litedram.gen as gen
        gen.LiteDRAMGENSDRPHYCRG = _half_rate_crg()
        phys.GENSDRPHY = HalfRateGENSDRPHY


def _half_rate_crg():
    from litex.build.generic_platform import Pins
    from litex.gen import LiteXModule
    from migen import ClockDomain
    from migen.genlib.resetsync import AsyncResetSynchronizer

    class HalfRateCrg(LiteXModule):
        """The controller's clock ``clk`` and the PHY's ``clk2x``, both reset by ``rst``."""

        def __init__(self, platform, core_config):
            self.cd_sys = ClockDomain()
            self.cd_sys2x = ClockDomain()
            platform.add_extension([("clk2x", 0, Pins(1))])
            rst = platform.request("rst")
            self.comb += [self.cd_sys.clk.eq(platform.request("clk")),
                          self.cd_sys2x.clk.eq(platform.request("clk2x"))]
            self.specials += [AsyncResetSynchronizer(self.cd_sys, rst),
                              AsyncResetSynchronizer(self.cd_sys2x, rst)]

    return HalfRateCrg


def main(argv: list[str]) -> None:
    import yaml
    import litedram.gen as gen

    config = yaml.safe_load(Path(argv[0]).read_text())
    rate = config.get(RATE_KEY, "1:1")
    if rate not in ("1:1", HALF_RATE):
        raise SystemExit(f"error: {RATE_KEY} must be 1:1 or {HALF_RATE}, not {rate!r}")
    if config.get("memtype") != "SDR" or config.get("sdram_phy") != "GENSDRPHY":
        raise SystemExit("error: bitmill's generator makes SDR controllers: memtype SDR, sdram_phy GENSDRPHY")
    _patch(config, rate)
    sys.argv = ["litedram_gen", *argv]
    gen.main()


if __name__ == "__main__":
    main(sys.argv[1:])
