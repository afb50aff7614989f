"""Wall time of a zoo build on a local Ray cluster of two workers (one job per core, one thread
each), with and without one worker killed mid-build, against the same build in one process
with two threads. Every Ray zoo is checked byte-identical to the one-process zoo.

    python bench/ray_zoo.py [--preset glyph-inr] [--count 4000] [--rounds 3]

Prints the median seconds of each and the ratios to one process.
"""

import argparse
import filecmp
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
import ray

import glassbox
from glassbox import distributed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--preset", default="glyph-inr")
parser.add_argument("--count", type=int, default=4000)
parser.add_argument("--rounds", type=int, default=3)
args = parser.parse_args()


def kill_first_job_worker(zoo: Path, stop: threading.Event, killed: list):
    while not stop.is_set():
        if any(zoo.glob("models-*.safetensors")):
            for p in psutil.process_iter(["pid", "cmdline"]):
                if any("glassbox-zoo-build" in part for part in (p.info["cmdline"] or [])):
                    os.kill(p.info["pid"], signal.SIGKILL)
                    killed.append(p.info["pid"])
                    return
        time.sleep(0.005)


def same(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)


glassbox.set_threads(2)
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
work = Path(tempfile.mkdtemp())
times = {"one process, 2 threads": [], "Ray, 2 workers": [], "Ray, 2 workers, one killed": []}
distributed.build_zoo(args.preset, work / "warm-up", jobs=2, count=80)  # start the workers
for r in range(args.rounds):
    single = work / f"single-{r}"
    start = time.perf_counter()
    glassbox.zoo_build(args.preset, single, count=args.count, quiet=True)
    times["one process, 2 threads"].append(time.perf_counter() - start)

    report = distributed.build_zoo(args.preset, work / f"ray-{r}", jobs=2, count=args.count)
    assert same(work / f"ray-{r}", single)
    times["Ray, 2 workers"].append(report.seconds)

    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_first_job_worker, args=(work / f"killed-{r}", stop, killed))
    killer.start()
    report = distributed.build_zoo(args.preset, work / f"killed-{r}", jobs=2, count=args.count)
    stop.set()
    killer.join()
    assert killed and same(work / f"killed-{r}", single)
    times["Ray, 2 workers, one killed"].append(report.seconds)
ray.shutdown()
shutil.rmtree(work)

base = statistics.median(times["one process, 2 threads"])
print(f"{args.preset}, {args.count} models, {args.rounds} rounds, medians (every Ray zoo byte-identical to the one-process zoo):")
for name, values in times.items():
    m = statistics.median(values)
    print(f"  {name:28s} {m:6.2f} s  ({m / base:.2f} x one process)")
