"""Latency tables: every layer's simulated cycles at every bit-width pair; a policy's prediction
against the simulation of the policy itself; the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from bitmill.compiler import zoo
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError, IRError
from bitmill.sim import latency

CFG = AccelConfig.resolve("sim-4x4-k16")
PAIRS = ((2, 2), (2, 4), (4, 2), (4, 4), (8, 8))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return latency.build_table("resnet8", CFG, PAIRS, cache=tmp_path_factory.mktemp("latency"))


def test_searched_layers_and_ties(table):
    assert table.searched == ("layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2",
                              "layer2.0.downsample", "layer3.0.conv1", "layer3.0.conv2",
                              "layer3.0.downsample")
    assert table.tied == (("layer2.0.conv1", "layer2.0.downsample"),
                          ("layer3.0.conv1", "layer3.0.downsample"))
    assert table.governor["conv1"] == "layer1.0.conv1"              # the stem's output bits
    assert table.governor["layer1.0.add"] == "layer2.0.conv1"
    assert table.governor["fc"] is None and table.governor["layer3.0.add"] is None


def test_a_policy_at_one_pair_predicts_its_table_run(table):
    for pair in PAIRS:
        policy = {l: pair for l in table.searched}
        assert table.predict(policy) == table.measured[pair] + sum(
            table.cycles[n][(8, 8)] - table.cycles[n][pair] for n in table.layers
            if table.governor[n] is None)


def test_random_policies_predicted_within_one_percent(table):
    v = latency.validate(table, CFG, 3, seed=1)
    assert len(v.simulated) == 3 and np.all(np.abs(v.errors) < 0.01), v


def test_per_layer_bits_reach_the_graph():
    policy = {"layer1.0.conv1": (3, 5), "layer1.0.conv2": (2, 6)}
    g = zoo.build("resnet8", latency.policy_spec(policy))
    assert (g["layer1.0.conv1"].w_bits, g["conv1"].out.bits) == (3, 5)
    assert (g["layer1.0.conv2"].w_bits, g["layer1.0.conv1"].out.bits) == (2, 6)
    assert g["layer2.0.conv1"].w_bits == 8 and g["fc"].w_bits == 8
    with pytest.raises(IRError, match="layer2.0.downsample and layer2.0.conv1 read the same tensor"):
        zoo.build("resnet8", latency.policy_spec({"layer2.0.conv1": (4, 4)}))


def test_bad_policies_are_named(table):
    policy = {l: (4, 4) for l in table.searched}
    with pytest.raises(BitmillError, match="the policy has no bits for layer1.0.conv1"):
        table.predict({k: v for k, v in policy.items() if k != "layer1.0.conv1"})
    with pytest.raises(BitmillError, match=r"layer1.0.conv1: W3A3 is outside the table's pairs"):
        table.predict({**policy, "layer1.0.conv1": (3, 3)})
    with pytest.raises(BitmillError, match="need the same activation bits"):
        table.predict({**policy, "layer2.0.downsample": (4, 2)})


def test_the_cache_answers_and_a_damaged_entry_is_rebuilt(table, tmp_path, monkeypatch):
    latency.build_table("resnet8", CFG, PAIRS[:2], cache=tmp_path)
    (entry,) = tmp_path.iterdir()
    monkeypatch.setattr(latency, "simulate_policy", lambda *a, **k: pytest.fail("not cached"))
    again = latency.build_table("resnet8", CFG, PAIRS[:2], cache=tmp_path)
    assert again.cycles == {l: {p: c[p] for p in PAIRS[:2]} for l, c in table.cycles.items()}
    entry.write_text("{")
    monkeypatch.undo()
    assert latency.build_table("resnet8", CFG, PAIRS[:2], cache=tmp_path).measured == again.measured


def test_searched_costs_add_up_to_the_prediction(table):
    cost, constant = table.searched_costs(PAIRS)
    policy = latency.random_policy(table, np.random.default_rng(3))
    assert constant + sum(cost[l][policy[l]] for l in table.searched) == table.predict(policy)
