"""glassbox past one machine: zoo builds split into Ray tasks.

A zoo is built in shards, and every model is fitted from (seed, its index) alone, so the jobs
``glassbox zoo build PRESET --shard i/n`` for i = 0..n-1 write disjoint shards of one zoo.
:func:`build_zoo` runs those jobs as Ray tasks. A task whose worker dies is retried by Ray; the
retry resumes, keeping the shards already written, so the zoo comes out byte-identical to a
single ``glassbox zoo build`` (on machines with the same CPU features).

Every task writes into ``out``: on a cluster of several machines it must be a folder they all
see (a shared file system). Ray is imported only when used (``pip install "glassbox[ray]"``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from . import _glassbox
from .commands import command_args


@dataclass
class ZooBuildReport:
    """What a distributed build did: the zoo folder, the jobs it was split into, the shards the
    zoo has, and the wall time from submitting the tasks to the last one finishing."""

    zoo: Path
    jobs: int
    shards: int
    seconds: float


def _build_job(args: list[str]) -> float:
    """One ``glassbox zoo build ... --shard i/n`` in this Ray worker; returns its seconds."""
    start = time.perf_counter()
    _glassbox.run(args)
    return time.perf_counter() - start


def _wait_all(ray, refs: list) -> None:
    """Wait for every task; on the first that fails, cancel the rest and raise its error as the
    build raised it (ValueError, OSError, ...)."""
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(done[0])
        except ray.exceptions.RayTaskError as e:
            for ref in pending:
                ray.cancel(ref, force=True)
            for ref in pending:
                try:
                    ray.get(ref)
                except Exception:  # cancelled, or failed on its own: the first error is raised
                    pass
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, Exception) else e) from None


def _missing_shards(zoo: Path) -> list[str]:
    spec = json.loads((zoo / "zoo.json").read_text(encoding="utf-8"))
    n = -(-spec["count"] // max(spec["shard_size"], 1))
    names = [f"models-{s:05}.safetensors" for s in range(n)]
    return [name for name in names if not (zoo / name).is_file()]


def build_zoo(
    preset: str,
    out: Union[str, os.PathLike],
    jobs: Optional[int] = None,
    threads_per_job: int = 1,
    max_retries: int = 3,
    seed: Optional[int] = None,
    data: Optional[Union[str, os.PathLike]] = None,
    **options: Any,
) -> ZooBuildReport:
    """Build the zoo ``preset`` into ``out`` as ``jobs`` Ray tasks (default: one per
    ``threads_per_job`` CPUs of the cluster), each using ``threads_per_job`` threads.

    ``seed``, ``data`` and ``options`` (count=..., per_tree=..., ...) are those of ``glassbox
    zoo build``. Ray is started on this machine if it is not running. A task whose worker dies
    is retried up to ``max_retries`` times; an error in the build itself (a bad preset, missing
    data) is raised at once, as from :func:`glassbox.zoo_build`.
    """
    import ray

    if not ray.is_initialized():
        ray.init()
    if threads_per_job < 1:
        raise ValueError("threads_per_job must be at least 1")
    if jobs is None:
        jobs = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads_per_job)
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    task = ray.remote(num_cpus=threads_per_job, max_retries=max_retries, retry_exceptions=False)(_build_job)
    out = Path(out).resolve()
    start = time.perf_counter()
    refs = []
    for i in range(jobs):
        words = command_args(["--quiet", "--threads", str(threads_per_job)], seed=seed, data=data)
        args = words + command_args(["zoo", "build"], preset, out=out, shard=f"{i}/{jobs}", **options)
        refs.append(task.options(name=f"glassbox-zoo-build-{i}-of-{jobs}").remote(args))
    _wait_all(ray, refs)
    seconds = time.perf_counter() - start
    missing = _missing_shards(out)
    if missing:
        raise RuntimeError(f"{out}: the build finished without {', '.join(missing)}")
    shards = len(list(out.glob("models-*.safetensors")))
    return ZooBuildReport(zoo=out, jobs=jobs, shards=shards, seconds=seconds)
