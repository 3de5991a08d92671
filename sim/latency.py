"""Latency tables: the cycles of every layer of a network at every bit-width pair, measured by
the cycle-accurate simulator, so that a bit-width search can price a per-layer policy without
simulating it.

For each pair ``(w, a)`` of the configuration's ranges the network is built with every
searched layer at ``(w, a)`` (`policy_spec`: the first and last layer and the average pool's
input stay at 8 bits in every policy of the search), compiled and simulated (`bitmill.sim.cycle`, the same code
`bitmill simulate` runs); the table holds each layer's simulated cycles (`LayerStats.cycles`:
from the end of the previous layer's last compute instruction to the end of its own), its MACs,
weight bytes and BitOPs.

A policy assigns a pair to every *searched* layer (every convolution but the first; the dense
layer stays at 8 bits). Its predicted cycles are the sum, over all layers, of the table entry
at the pair of the layer's *governing* searched layer (a searched layer governs itself; any other
layer -- the stem, residual adds, pools -- is governed by the first searched layer that reads
what it produces, and the layers after the last one by the 8-bit pair), plus the cycles outside
every layer (the program preload, priced at the first searched layer's pair). The prediction
errs where a layer's cycles depend on its neighbours' bits: the bytes it stores (its output bits
are the next layer's activation bits) and how its transfers overlap the previous layer's
computing (a layer's cycles start where the previous layer's computing ends); `validate`
measures the error on random policies.

Tables are cached as JSON, keyed by the network's shape, the configuration and a hash of the
timing, compiler and simulator sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bitmill import fileio, timing
from bitmill.compiler import codegen, cost, lower, zoo
from bitmill.compiler.ir import Conv2d, Dense, Graph
from bitmill.compiler.pipeline import compile_net
from bitmill.config import AccelConfig
from bitmill.errors import BitmillError
from bitmill.precision import parse_bits
from bitmill.sim import cycle, stats as sim_stats

EDGE_BITS = 8
Pair = tuple[int, int]

# the code whose change changes a simulated cycle count
_SOURCES = (timing, lower, codegen, cost, cycle, sim_stats)


def code_hash() -> str:
    """Hash of the sources that decide simulated cycles (timing, lowering, code generation,
    the simulator)."""
    h = hashlib.sha256()
    for mod in _SOURCES:
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def searched_layers(graph: Graph) -> tuple[str, ...]:
    """The layers whose bits a policy chooses: every convolution but the first."""
    convs = [n.name for n in graph.nodes if isinstance(n, Conv2d)]
    return tuple(convs[1:])


def ties(graph: Graph) -> tuple[tuple[str, str], ...]:
    """Pairs of searched layers that read the same tensor and so share activation bits (a
    block's first convolution and its downsampling shortcut)."""
    readers: dict[str, list[str]] = {}
    searched = set(searched_layers(graph))
    for n in graph.nodes:
        if n.name in searched:
            readers.setdefault(n.inputs[0], []).append(n.name)
    return tuple((names[0], other) for names in readers.values() for other in names[1:])


def _governors(graph: Graph) -> dict[str, str | None]:
    """Per node, the searched layer whose pair prices it (None: the 8-bit pair)."""
    searched = set(searched_layers(graph))
    consumers: dict[str, list[str]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n.name)
    order = {n.name: k for k, n in enumerate(graph.nodes)}
    memo: dict[str, str | None] = {}

    def find(name: str) -> str | None:
        if name in searched:
            return name
        if name not in memo:
            memo[name] = None
            for c in sorted(consumers.get(name, ()), key=order.get):
                if c in searched:
                    memo[name] = c
                    break
            else:
                for c in sorted(consumers.get(name, ()), key=order.get):
                    memo[name] = find(c)
                    if memo[name] is not None:
                        break
        return memo[name]
    return {n.name: find(n.name) for n in graph.nodes}


@dataclass(frozen=True)
class LatencyTable:
    """Per layer and pair: simulated cycles; per searched layer: MACs and weights; the cycles
    outside every layer per pair; the governing searched layer of every layer."""

    model: str
    config: str
    key: str
    pairs: tuple[Pair, ...]
    layers: tuple[str, ...]                       # every layer of the simulator's statistics
    searched: tuple[str, ...]
    tied: tuple[tuple[str, str], ...]
    governor: Mapping[str, str | None]
    cycles: Mapping[str, Mapping[Pair, int]]      # layer -> pair -> simulated cycles
    outside: Mapping[Pair, int]                   # cycles outside every layer (preload)
    macs: Mapping[str, int]
    weights: Mapping[str, int]                    # weight count per searched layer
    measured: Mapping[Pair, int]                  # whole-network simulated cycles per uniform pair

    def pair_of(self, policy: Mapping[str, Pair], layer: str) -> Pair:
        gov = self.governor.get(layer)
        return (EDGE_BITS, EDGE_BITS) if gov is None else tuple(policy[gov])

    def layer_cycles(self, policy: Mapping[str, Pair], layer: str) -> int:
        """The table's cycles of ``layer`` under ``policy``."""
        return self.cycles[layer][self.pair_of(policy, layer)]

    def predict(self, policy: Mapping[str, Pair]) -> int:
        """Predicted cycles of the whole network under ``policy`` (searched layer -> pair)."""
        self.check(policy)
        first = tuple(policy[self.searched[0]])
        return self.outside[first] + sum(self.layer_cycles(policy, l) for l in self.layers)

    def check(self, policy: Mapping[str, Pair]) -> None:
        """BitmillError naming the first searched layer without a pair of the table, or a tie
        the policy breaks."""
        for layer in self.searched:
            if layer not in policy:
                raise BitmillError(f"the policy has no bits for {layer}")
            if tuple(policy[layer]) not in self.cycles[layer]:
                w, a = policy[layer]
                raise BitmillError(f"{layer}: W{w}A{a} is outside the table's pairs (config {self.config})")
        for x, y in self.tied:
            if policy[x][1] != policy[y][1]:
                raise BitmillError(f"{x} and {y} read the same tensor and need the same activation bits")

    def searched_costs(self, pairs) -> tuple[dict[str, dict[Pair, float]], int]:
        """Per searched layer and pair, the cycles of every layer it governs (the program
        preload on the first searched layer), and the cycles no searched layer governs: the
        prediction of a policy is their sum over its pairs plus that constant."""
        cost = {l: {p: 0.0 for p in pairs} for l in self.searched}
        constant = 0
        for n in self.layers:
            gov = self.governor.get(n)
            if gov is None:
                constant += self.cycles[n][(EDGE_BITS, EDGE_BITS)]
            else:
                for p in pairs:
                    cost[gov][p] += self.cycles[n][p]
        for p in pairs:
            cost[self.searched[0]][p] += self.outside[p]
        return cost, constant

    def bitops(self, policy: Mapping[str, Pair]) -> int:
        """MACs x w_bits x a_bits over the searched layers."""
        return sum(self.macs[l] * policy[l][0] * policy[l][1] for l in self.searched)

    def weight_bytes(self, policy: Mapping[str, Pair]) -> int:
        """Bytes of the searched layers' weights at their bits."""
        return sum(-(-self.weights[l] * policy[l][0] // 8) for l in self.searched)

    def to_dict(self) -> dict:
        pk = lambda p: f"w{p[0]}a{p[1]}"     # noqa: E731
        return {"model": self.model, "config": self.config, "key": self.key,
                "pairs": [pk(p) for p in self.pairs], "layers": list(self.layers),
                "searched": list(self.searched), "tied": [list(t) for t in self.tied],
                "governor": dict(self.governor),
                "cycles": {l: {pk(p): c for p, c in v.items()} for l, v in self.cycles.items()},
                "outside": {pk(p): c for p, c in self.outside.items()},
                "macs": dict(self.macs), "weights": dict(self.weights),
                "measured": {pk(p): c for p, c in self.measured.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyTable":
        up = parse_bits
        return cls(d["model"], d["config"], d["key"], tuple(up(p) for p in d["pairs"]),
                   tuple(d["layers"]), tuple(d["searched"]), tuple(tuple(t) for t in d["tied"]),
                   dict(d["governor"]),
                   {l: {up(p): c for p, c in v.items()} for l, v in d["cycles"].items()},
                   {up(p): c for p, c in d["outside"].items()}, dict(d["macs"]), dict(d["weights"]),
                   {up(p): c for p, c in d["measured"].items()})


def policy_spec(policy: Mapping[str, Pair]) -> zoo.BitSpec:
    """The built-in network's bits under ``policy``: first and last layer 8-bit, the average
    pool's input 8-bit, every searched layer as the policy says."""
    return zoo.BitSpec(EDGE_BITS, EDGE_BITS, first_last_bits=EDGE_BITS,
                       layers=tuple((l, tuple(p)) for l, p in policy.items()))


def simulate_policy(model: str, cfg: AccelConfig, policy: Mapping[str, Pair] | zoo.BitSpec,
                    seed: int = 0):
    """The built-in ``model`` under ``policy`` compiled for ``cfg`` and simulated: SimStats."""
    spec = policy if isinstance(policy, zoo.BitSpec) else policy_spec(policy)
    g = zoo.build(model, spec, seed=seed)
    x = np.random.default_rng(seed).integers(0, 256, size=g.input.out.shape)
    compiled = compile_net(g, cfg, x)
    _, st = cycle.simulate(compiled.program, compiled.layer_ops(), compiled.layer_macs(),
                           compiled.layer_bits())
    return g, st


def _cache_key(model: str, cfg: AccelConfig, pairs) -> str:
    text = json.dumps({"model": model, "config": cfg.to_dict(), "pairs": [list(p) for p in pairs],
                       "code": code_hash(), "edge": EDGE_BITS}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def default_cache() -> Path:
    """``$BITMILL_CACHE/latency`` or ``~/.cache/bitmill/latency``."""
    root = os.environ.get("BITMILL_CACHE") or Path.home() / ".cache" / "bitmill"
    return Path(root) / "latency"


def build_table(model: str, cfg: AccelConfig, pairs: tuple[Pair, ...] | None = None,
                cache: Path | None = None, progress: Callable[[str], None] | None = None) -> LatencyTable:
    """The latency table of built-in ``model`` on ``cfg`` (every pair of the config's ranges by
    default), from the cache when its key matches."""
    if pairs is None:
        pairs = tuple((w, a) for w in range(cfg.weight_bits[0], cfg.weight_bits[1] + 1)
                      for a in range(cfg.act_bits[0], cfg.act_bits[1] + 1))
    key = _cache_key(model, cfg, pairs)
    path = (cache or default_cache()) / f"{model}-{cfg.name}-{key}.json"
    if path.exists():
        try:
            return LatencyTable.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError):
            pass                                   # a damaged entry is rebuilt
    cycles: dict[str, dict[Pair, int]] = {}
    outside, measured = {}, {}
    graph = macs = None
    t0 = time.perf_counter()
    names = searched_layers(zoo.build(model, policy_spec({})))
    for k, (w, a) in enumerate(pairs):
        g, st = simulate_policy(model, cfg, {l: (w, a) for l in names})
        if graph is None:
            graph, macs = g, {l.name: l.macs for l in st.layers}
        for l in st.layers:
            cycles.setdefault(l.name, {})[(w, a)] = l.cycles
        outside[(w, a)] = st.cycles - sum(l.cycles for l in st.layers)
        measured[(w, a)] = st.cycles
        if progress:
            progress(f"latency table {model} on {cfg.name}: W{w}A{a} ({k + 1}/{len(pairs)}) "
                     f"{time.perf_counter() - t0:.0f} s")
    searched = searched_layers(graph)
    weights = {n.name: int(n.weight.size) for n in graph.nodes if n.name in searched}
    table = LatencyTable(model, cfg.name, key, tuple(pairs), tuple(cycles), searched, ties(graph),
                         _governors(graph), cycles, outside,
                         {l: macs[l] for l in searched}, weights, measured)
    fileio.atomic_write_text(path, json.dumps(table.to_dict()))
    return table


@dataclass(frozen=True)
class Validation:
    """Predicted against simulated cycles of random policies."""

    predicted: tuple[int, ...]
    simulated: tuple[int, ...]

    @property
    def errors(self) -> np.ndarray:
        """Relative error (predicted / simulated - 1) per policy."""
        return np.array(self.predicted) / np.array(self.simulated) - 1


def random_policy(table: LatencyTable, rng: np.random.Generator) -> dict[str, Pair]:
    """Independent random pairs per searched layer, ties respected."""
    policy = {l: table.pairs[rng.integers(len(table.pairs))] for l in table.searched}
    for x, y in table.tied:
        policy[y] = (policy[y][0], policy[x][1])
        if policy[y] not in table.cycles[y]:
            policy[y] = policy[x]
    return policy


def validate(table: LatencyTable, cfg: AccelConfig, count: int, seed: int = 0) -> Validation:
    """The table's prediction against the simulation of ``count`` random policies."""
    if cfg.name != table.config:
        raise BitmillError(f"the table is for config {table.config}, not {cfg.name}")
    rng = np.random.default_rng(seed)
    pred, sim = [], []
    for _ in range(count):
        policy = random_policy(table, rng)
        pred.append(table.predict(policy))
        sim.append(simulate_policy(table.model, cfg, policy)[1].cycles)
        print(f"  policy {len(sim)}/{count}: predicted {pred[-1]:,}, simulated {sim[-1]:,}",
              file=sys.stderr)
    return Validation(tuple(pred), tuple(sim))
