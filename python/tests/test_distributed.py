"""Zoo builds and activation caching on a local Ray cluster of two workers, one of them killed
mid-job: the zoo and the store are byte-identical to one `glassbox zoo build` or `glassbox acts`
in one process."""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import glassbox
from conftest import TINY_GPT2, need

PRESET, COUNT = "glyph-inr", 2000  # 4 shards of 500 INRs, about a second each on one thread


def zoo_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_identical(a: Path, b: Path):
    assert zoo_files(a) == zoo_files(b)
    for name in zoo_files(a):
        assert filecmp.cmp(a / name, b / name, shallow=False), name


@pytest.fixture(scope="module")
def ray_cluster():
    ray = need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def kill_one_worker(task: str, shards, killed: list, stop: threading.Event):
    """SIGKILL a Ray worker running a `task` job once `shards()` shows a first shard on disk,
    while the jobs still have shards to write."""
    psutil = need("psutil")
    while not stop.is_set():
        written = len(shards())
        if written:
            for p in psutil.process_iter(["pid", "cmdline"]):
                if any(task in part for part in (p.info["cmdline"] or [])):
                    os.kill(p.info["pid"], signal.SIGKILL)
                    killed.append((p.info["pid"], written))
                    return
        time.sleep(0.005)


def test_a_zoo_built_by_two_ray_workers_with_one_killed_equals_one_process(ray_cluster, tmp_path):
    from glassbox import distributed

    start = time.perf_counter()
    glassbox.zoo_build(PRESET, tmp_path / "single", count=COUNT, quiet=True)
    single_seconds = time.perf_counter() - start

    zoo = tmp_path / "ray"
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_one_worker, args=("glassbox-zoo-build", lambda: list(zoo.glob("models-*.safetensors")), killed, stop))
    killer.start()
    try:
        report = distributed.build_zoo(PRESET, zoo, jobs=2, count=COUNT)
    finally:
        stop.set()
        killer.join()
    print(f"\none process: {single_seconds:.2f} s; Ray, 2 workers, one killed: {report.seconds:.2f} s")
    assert killed and killed[0][1] < 4, f"a build worker was killed mid-build: {killed}"
    assert (report.jobs, report.shards) == (2, 4)
    assert zoo_files(zoo) == ["labels.json", "models-00000.safetensors", "models-00001.safetensors", "models-00002.safetensors", "models-00003.safetensors", "zoo.json"]
    assert_identical(zoo, tmp_path / "single")


def test_an_activation_store_cached_by_two_ray_workers_with_one_killed_equals_one_run(ray_cluster, tmp_path):
    from glassbox import distributed

    words = "the cat sat on a mat and looked at the dog while a bird sang in the old tree by the river".split()
    rng = __import__("random").Random(0)
    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(200)) for _ in range(100)))
    hooks = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]
    options = dict(context=64, contexts_per_shard=8)
    start = time.perf_counter()
    glassbox.acts(TINY_GPT2, tmp_path / "single", text=text, hooks=",".join(hooks), quiet=True, **options)
    single_seconds = time.perf_counter() - start

    store = tmp_path / "ray"
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_one_worker, args=("glassbox-acts", lambda: list((store / "parts").glob("shard-*.safetensors")), killed, stop))
    killer.start()
    try:
        report = distributed.cache_activations(str(TINY_GPT2), text, hooks, store, jobs=2, **options)
    finally:
        stop.set()
        killer.join()
    print(f"\none process: {single_seconds:.2f} s; Ray, 2 workers, one killed: jobs {report.seconds:.2f} s, gathering {report.gather_seconds:.2f} s")
    assert killed, "a caching worker was killed mid-job"
    assert report.jobs == 2 and not (store / "parts").exists()
    assert len(zoo_files(store)) > 10
    assert_identical(store, tmp_path / "single")


def test_jobs_follow_the_cluster_and_reused_workers_take_any_thread_count(ray_cluster, tmp_path):
    from glassbox import distributed

    glassbox.zoo_build(PRESET, tmp_path / "single", count=400, quiet=True)
    one = distributed.build_zoo(PRESET, tmp_path / "one-per-cpu", count=400)
    assert one.jobs == 2, "one job per CPU of the cluster"
    # The same workers, now asked for two threads each: one job fills the two CPUs.
    two = distributed.build_zoo(PRESET, tmp_path / "two-threads", count=400, threads_per_job=2)
    assert two.jobs == 1
    assert_identical(tmp_path / "one-per-cpu", tmp_path / "single")
    assert_identical(tmp_path / "two-threads", tmp_path / "single")


def test_build_errors_are_raised_not_retried(ray_cluster, tmp_path):
    from glassbox import distributed

    with pytest.raises(ValueError, match="unknown zoo preset 'nope'"):
        distributed.build_zoo("nope", tmp_path / "z", jobs=2)
    with pytest.raises(ValueError, match="threads_per_job"):
        distributed.build_zoo(PRESET, tmp_path / "z", threads_per_job=0)
