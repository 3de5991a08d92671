"""The points of ``bitmill report search``: one policy each, fine-tuned, exported and measured.

``measure(FineTune)`` is one independent job (run here or as a Ray task, `bitmill.cli.fanout`):
QAT fine-tune from the FP checkpoint (reused when finished, resumed when killed), integer-path
accuracy of the exported network on the test set (golden), and the exported network's cycles on
every configuration from the cycle-accurate simulator (bit-exact against golden). Its result
depends only on the job: ``threads`` fixes torch's thread count, so the same job gives the same
figures wherever it runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bitmill.fileio import atomic_write_text


@dataclass(frozen=True)
class Point:
    """One policy of the report: its name, kind, bits file (searched) or uniform bits."""

    name: str
    kind: str                 # "uniform", "ilp", "ilpq" or "sdq"
    bits: str | None = None   # uniform bits
    policy: Path | None = None
    config: str | None = None
    ratio: float | None = None
    min_act_bits: int | None = None     # searched: the smallest activation width, if not the default
    target: str | None = None           # searched as fast as possible at this uniform policy's sensitivity


@dataclass(frozen=True)
class FineTune:
    """One measurement job: a point's training configuration, where it runs, what it is
    measured on."""

    point: Point
    train: object             # bitmill.models.train.TrainConfig
    run_dir: Path
    init: Path
    configs: tuple[str, ...]
    threads: int
    measured: bool = True     # False: fine-tune only (measured by a later run, e.g. on another machine)


def train_config(point: Point, init: Path, qat_epochs: int, qat_lr: float, seed: int, train_subset,
                 test_subset, dataset: str, model: str):
    """The QAT fine-tune every point gets (LSQ; SDQ policies with KD and EBR, SDQ's phase 2)."""
    from bitmill.models.bits import BitAssignment
    from bitmill.models.train import TrainConfig
    if point.policy is not None:
        a = BitAssignment.load(point.policy)
        bits, layer_bits = f"w{a.default[0]}a{a.default[1]}", tuple((n, f"w{w}a{b}") for n, (w, b) in a.layers)
    else:
        bits, layer_bits = point.bits, ()
    sdq = point.kind == "sdq"
    return TrainConfig(model=model, quantizer="lsq", bits=bits, first_last=8, epochs=qat_epochs,
                       lr=qat_lr, seed=seed, train_subset=train_subset, test_subset=test_subset,
                       dataset=dataset, layer_bits=layer_bits,
                       teacher=str(Path(init).resolve()) if sdq else None, ebr=0.1 if sdq else 0.0)


def same_training(metrics: dict, train_cfg) -> bool:
    """Whether a finished run's ``metrics.json`` records the training configuration ``train_cfg``."""
    return metrics.get("config") == json.loads(json.dumps(asdict(train_cfg)))


def measure(job: FineTune) -> dict:
    """Fine-tune (or reuse), evaluate and simulate one point; its report row."""
    from bitmill.models.report_qat import evaluate_run
    from bitmill.models.train import load_data, train
    os.environ["BITMILL_THREADS"] = str(job.threads)
    import torch
    torch.set_num_threads(job.threads)
    metrics_path = job.run_dir / "metrics.json"
    if metrics_path.exists() and not same_training(json.loads(metrics_path.read_text()), job.train):
        print(f"== {job.point.name}: the finished fine-tune was of another policy or settings; "
              "training again", flush=True)
        for name in ("metrics.json", "checkpoint.pt", "eval.json", "cycles.json"):
            (job.run_dir / name).unlink(missing_ok=True)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else \
        train(job.train, job.run_dir, str(job.init), resume=(job.run_dir / "checkpoint.pt").exists())
    p = job.point
    if not job.measured:
        return {"name": p.name, "kind": p.kind, "trained": True}
    return {"name": p.name, "kind": p.kind, "bits": p.bits, "config": p.config, "ratio": p.ratio,
            "min_act_bits": p.min_act_bits, "target": p.target,
            **evaluate_run(job.run_dir, load_data(job.train)[1]), "cycles": cycles(job.run_dir, job.configs),
            "train_seconds": metrics.get("seconds_per_epoch", 0) * job.train.epochs,
            "trained_on": (metrics.get("history") or [{}])[-1].get("device")}


def _exported(run_dir: Path):
    """The run's exported network and the image its cycles are measured on."""
    from bitmill.models.export import export
    from bitmill.models.train import load_model
    graph = export(load_model(run_dir / "checkpoint.pt")[0])
    return graph, np.random.default_rng(0).integers(0, 256, size=graph.input.out.shape)


def rtl_cycles(run_dir: Path, config: str, build_dir: Path) -> dict:
    """The run's exported network on the Verilated RTL of ``config`` (`bitmill rtlsim`), checked
    bit for bit against golden and instruction by instruction against the simulator: its
    config, cycles, cycles per second, run and build seconds."""
    from bitmill.compiler.pipeline import compile_net
    from bitmill.config import AccelConfig
    from bitmill.sim.cosim import rtlsim
    graph, x = _exported(run_dir)
    program = compile_net(graph, AccelConfig.resolve(config), x).program
    result, build_s = rtlsim.run_checked(graph, program, x, build_dir)
    return {"config": config, "cycles": result.registers["cycles_reg"], "cycles_per_s": round(result.cycles_per_s),
            "run_seconds": round(result.wall_s, 1), "build_seconds": round(build_s, 1)}


def stale_configs(known: dict, fingerprints: dict[str, str]) -> list[str]:
    """The configs of ``fingerprints`` (name -> `config_fingerprint` in hex) whose cycles
    ``known`` (a ``cycles.json``) lacks or recorded for other settings."""
    recorded = known.get("fingerprints", {})
    return [c for c, f in fingerprints.items() if c not in known or recorded.get(c) != f]


def cycles(run_dir: Path, configs: tuple[str, ...]) -> dict[str, int]:
    """Simulated cycles of the exported network on every config (bit-exact against golden),
    cached in the run folder under the simulator's code hash and each config's settings (a
    config file edited since is simulated again)."""
    from bitmill.config import AccelConfig
    from bitmill.program_file import config_fingerprint
    from bitmill.sim.latency import code_hash
    from bitmill.sim.verify import simulate_net
    cache = run_dir / "cycles.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if known.get("code") != code_hash():
        known = {"code": code_hash()}
    resolved = {c: AccelConfig.resolve(c) for c in configs}
    fingerprints = {c: config_fingerprint(cfg).hex() for c, cfg in resolved.items()}
    missing = stale_configs(known, fingerprints)
    if missing:
        graph, x = _exported(run_dir)
        for c in missing:
            known[c] = simulate_net(graph, resolved[c], x)[1].cycles
            known.setdefault("fingerprints", {})[c] = fingerprints[c]
        atomic_write_text(cache, json.dumps(known))
    return {c: known[c] for c in configs}
