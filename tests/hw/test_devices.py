"""Device capacities: utilisation per resource class of the reference part of each target."""

import pytest

from bitmill.errors import BitmillError
from bitmill.hw.devices import device_of
from bitmill.hw.synth import SynthReport, clock_verdict, markdown


def test_xc7_block_ram_counts_a_ramb18_as_half_a_ramb36():
    xc7 = device_of("xc7")
    assert xc7.part == "xc7a35t"
    use = xc7.utilisation({"lut": 2080, "ff": 416, "bram": 4, "dsp": 9},
                          {"RAMB36E1": 1, "RAMB18E1": 3})
    assert use == {"lut": 10.0, "ff": 1.0, "bram": 5.0, "dsp": 10.0}


def test_ice40_hx8k_has_no_dsp_and_the_table_says_so():
    report = SynthReport("t", "ice40", "top", 1, 1, 8, "bitparallel",
                         {"lut": 768, "carry": 0, "ff": 0, "dsp": 2, "bram": 8, "lutram": 0},
                         {"SB_MAC16": 2}, 1.0, device="iCE40HX8K",
                         utilisation_pct=device_of("ice40").utilisation(
                             {"lut": 768, "dsp": 2, "bram": 8}, {"SB_MAC16": 2}))
    text = markdown(report)
    assert "| lut | 768 | 10.00 % of 7,680 SB_LUT4 |" in text
    assert "| bram | 8 | 25.00 % of 32 SB_RAM40_4K |" in text
    assert "| dsp | 2 | the part has no SB_MAC16 |" in text


def test_clock_verdict():
    assert clock_verdict(100.0, 100.0) == "meets 100 MHz"
    assert clock_verdict(87.4, 100.0) == "misses 100 MHz by 12.6 MHz"


def test_unknown_target_is_refused():
    with pytest.raises(BitmillError, match="no device capacities for target 'gowin'"):
        device_of("gowin")
