"""Zoo builds on a local Ray cluster of two workers, one of them killed mid-build: the zoo is
byte-identical to `glassbox zoo build` in one process."""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import glassbox
from conftest import need

PRESET, COUNT = "glyph-inr", 2000  # 4 shards of 500 INRs, about a second each on one thread


def zoo_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def ray_cluster():
    ray = need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def kill_one_build_worker(zoo: Path, killed: list, stop: threading.Event):
    """SIGKILL a Ray worker running a zoo build job once the first shard is on disk, while the
    jobs still have shards to fit."""
    psutil = need("psutil")
    while not stop.is_set():
        written = len(list(zoo.glob("models-*.safetensors")))
        if written:
            for p in psutil.process_iter(["pid", "cmdline"]):
                if any("glassbox-zoo-build" in part for part in (p.info["cmdline"] or [])):
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
    killer = threading.Thread(target=kill_one_build_worker, args=(zoo, killed, stop))
    killer.start()
    try:
        report = distributed.build_zoo(PRESET, zoo, jobs=2, count=COUNT)
    finally:
        stop.set()
        killer.join()
    print(f"\none process: {single_seconds:.2f} s; Ray, 2 workers, one killed: {report.seconds:.2f} s")
    assert killed and killed[0][1] < 4, f"a build worker was killed mid-build: {killed}"
    assert (report.jobs, report.shards) == (2, 4)
    assert zoo_files(zoo) == zoo_files(tmp_path / "single") == ["labels.json", "models-00000.safetensors", "models-00001.safetensors", "models-00002.safetensors", "models-00003.safetensors", "zoo.json"]
    for name in zoo_files(zoo):
        assert filecmp.cmp(zoo / name, tmp_path / "single" / name, shallow=False), name


def test_build_errors_are_raised_not_retried(ray_cluster, tmp_path):
    from glassbox import distributed

    with pytest.raises(ValueError, match="unknown zoo preset 'nope'"):
        distributed.build_zoo("nope", tmp_path / "z", jobs=2)
    with pytest.raises(ValueError, match="threads_per_job"):
        distributed.build_zoo(PRESET, tmp_path / "z", threads_per_job=0)
