"""Independent jobs run one after another in this process, or as Ray tasks on a cluster.

``run_jobs(fn, jobs, ray=None)`` returns ``[fn(j) for j in jobs]`` in order, whichever way they
ran. With ``ray`` set, every job is one Ray task reserving ``cpus`` CPUs (and one GPU when the
cluster has any); ``ray`` is a Ray address (``host:6379``, ``ray://host:10001``), ``auto`` (the
cluster this machine belongs to, started with ``ray start``) or ``local`` (a Ray instance started
here for this run). Ray is an optional extra: ``pip install 'bitmill[ray]'``.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence, TypeVar

from bitmill.errors import BitmillError

J = TypeVar("J")
R = TypeVar("R")


def run_jobs(fn: Callable[[J], R], jobs: Sequence[J], ray: str | None = None, cpus: int = 1,
             label: Callable[[J], str] = str) -> list[R]:
    """``fn`` applied to every job, locally or as Ray tasks (see the module docstring)."""
    if cpus < 1:
        raise BitmillError(f"CPUs per job must be a positive integer, not {cpus}")
    if ray is None or not jobs:
        return [fn(j) for j in jobs]
    ray_mod = _import_ray()
    started = _connect(ray_mod, ray)
    try:
        return _run_remote(ray_mod, fn, jobs, cpus, label)
    finally:
        if started:
            ray_mod.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BitmillError("--ray needs Ray, an optional extra: pip install 'bitmill[ray]'") from None
    return ray


def _connect(ray_mod, address: str) -> bool:
    """Join the cluster at ``address`` (or start a local one); True when this call started
    or joined it (and so must shut it down)."""
    if ray_mod.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == "local":
            # Ray starts workers at niceness 15; here they are the job, not background work
            ray_mod.init(num_cpus=os.cpu_count() or 1, _system_config={"worker_niceness": 0}, **kwargs)
        else:
            ray_mod.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BitmillError(f"cannot reach the Ray cluster at {address!r} ({first}); give an address "
                           "such as host:6379, 'auto' for the cluster of 'ray start', or 'local'") from None
    return True


def _run_remote(ray_mod, fn, jobs, cpus: int, label) -> list:
    resources = ray_mod.cluster_resources()
    if resources.get("CPU", 0) < cpus:
        raise BitmillError(f"each job asks for {cpus} CPUs but the Ray cluster has "
                           f"{resources.get('CPU', 0):g}; ask for fewer (--threads)")
    gpus = 1 if resources.get("GPU", 0) >= 1 else 0
    task = ray_mod.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(fn)
    refs = [task.remote(j) for j in jobs]
    index = {r: i for i, r in enumerate(refs)}
    pending, done = list(refs), 0
    while pending:
        ready, pending = ray_mod.wait(pending, num_returns=1)
        done += 1
        try:
            ray_mod.get(ready[0])
        except ray_mod.exceptions.RayError as e:
            for r in pending:
                ray_mod.cancel(r, force=True)
            cause = getattr(e, "cause", None) or e
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
            raise BitmillError(f"the job {label(jobs[index[ready[0]]])} failed on Ray: {first}") from None
        print(f"ray: {done}/{len(jobs)} jobs done ({label(jobs[index[ready[0]]])})", file=sys.stderr,
              flush=True)
    return ray_mod.get(refs)
