"""glassbox past one machine: zoo builds and activation caching split into Ray tasks.

A zoo is built in shards, and every model is fitted from (seed, its index) alone, so the jobs
``glassbox zoo build PRESET --shard i/n`` for i = 0..n-1 write disjoint shards of one zoo.
Likewise the jobs ``glassbox acts MODEL --text FILE --shard i/n`` write disjoint shards of one
activation store, which a last run without ``--shard`` gathers. :func:`build_zoo` and
:func:`cache_activations` run those jobs as Ray tasks. A task whose worker dies is retried by
Ray; the retry resumes, keeping the shards already written, so the result is byte-identical to
one ``glassbox zoo build`` or ``glassbox acts`` (on machines with the same CPU features).

Every task writes into ``out``: on a cluster of several machines it must be a folder they all
see (a shared file system). Ray is imported only when used (``pip install "glassbox[ray]"``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import _glassbox
from .commands import command_args

__all__ = ["ActsReport", "ZooBuildReport", "build_zoo", "cache_activations"]


@dataclass
class ZooBuildReport:
    """What a distributed build did: the zoo folder, the jobs it was split into, the shards the
    zoo has, and the wall time from submitting the tasks to the last one finishing."""

    zoo: Path
    jobs: int
    shards: int
    seconds: float


def _run_job(args: list[str]) -> float:
    """One ``glassbox ... --shard i/n`` job in this Ray worker; returns its seconds."""
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
        except ray.exceptions.RayError as e:
            for ref in pending:
                ray.cancel(ref, force=True)
            for ref in pending:
                try:
                    ray.get(ref)
                except Exception:  # cancelled, or failed on its own: the first error is raised
                    pass
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, Exception) else e) from None


def _absolute(path):
    """A path that exists here, made absolute so that workers elsewhere read the same file; other
    values (a Hugging Face id, None) as given."""
    return str(Path(path).resolve()) if path is not None and Path(path).exists() else path


def _missing_shards(zoo: Path) -> list[str]:
    spec = json.loads((zoo / "zoo.json").read_text(encoding="utf-8"))
    n = -(-spec["count"] // max(spec["shard_size"], 1))
    names = [f"models-{s:05}.safetensors" for s in range(n)]
    return [name for name in names if not (zoo / name).is_file()]


@dataclass
class ActsReport:
    """What a distributed activation caching did: the store folder, the jobs, the wall time of
    the jobs and of the last run that gathered their shards into the store."""

    store: Path
    jobs: int
    seconds: float
    gather_seconds: float


def _run_jobs(jobs: Optional[int], threads_per_job: int, max_retries: int, job_args: Callable[[int, int], list[str]], name: str) -> tuple[int, float]:
    """Run ``glassbox`` with ``job_args(i, n)`` as n Ray tasks; returns n and the wall time."""
    import ray

    if threads_per_job < 1:
        raise ValueError("threads_per_job must be at least 1")
    if not ray.is_initialized():
        ray.init()
    if jobs is None:
        jobs = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads_per_job)
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    task = ray.remote(num_cpus=threads_per_job, max_retries=max_retries, retry_exceptions=False)(_run_job)
    start = time.perf_counter()
    refs = [task.options(name=f"glassbox-{name}-{i}-of-{jobs}").remote(["--quiet", "--threads", str(threads_per_job)] + job_args(i, jobs)) for i in range(jobs)]
    _wait_all(ray, refs)
    return jobs, time.perf_counter() - start


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
    out = Path(out).resolve()
    data = _absolute(data)

    def job(i: int, n: int) -> list[str]:
        return command_args([], seed=seed, data=data) + command_args(["zoo", "build"], preset, out=out, shard=f"{i}/{n}", **options)

    jobs, seconds = _run_jobs(jobs, threads_per_job, max_retries, job, "zoo-build")
    missing = _missing_shards(out)
    if missing:
        raise RuntimeError(f"{out}: the build finished without {', '.join(missing)}")
    shards = len(list(out.glob("models-*.safetensors")))
    return ZooBuildReport(zoo=out, jobs=jobs, shards=shards, seconds=seconds)


def cache_activations(
    model: str,
    text: Union[str, os.PathLike],
    hooks: Union[str, list[str]],
    out: Union[str, os.PathLike],
    jobs: Optional[int] = None,
    threads_per_job: int = 1,
    max_retries: int = 3,
    **options: Any,
) -> ActsReport:
    """Cache a language model's activations at ``hooks`` over ``text`` into the activation
    store ``out``, as ``jobs`` Ray tasks (``glassbox acts MODEL --text TEXT --shard i/n``), then
    gather their shards into the store here. ``options`` are those of ``glassbox acts``
    (context=..., contexts_per_shard=..., dtype=...); ``model`` and ``text`` must be paths every
    worker can read. Returns an :class:`ActsReport`.
    """
    out = Path(out).resolve()
    hooks = hooks if isinstance(hooks, str) else ",".join(hooks)
    words = command_args(["acts"], _absolute(model), text=_absolute(text), hooks=hooks, out=out, **options)
    jobs, seconds = _run_jobs(jobs, threads_per_job, max_retries, lambda i, n: words + ["--shard", f"{i}/{n}"], "acts")
    start = time.perf_counter()
    _glassbox.run(["--quiet"] + words)
    return ActsReport(store=out, jobs=jobs, seconds=seconds, gather_seconds=time.perf_counter() - start)
