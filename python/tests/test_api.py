"""The package's surface: the type stubs name exactly what the extension module has, and every
public name has a docstring."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import glassbox
from glassbox import _glassbox, distributed

STUBS = Path(glassbox.__file__).with_name("_glassbox.pyi")


def stub_names() -> dict[str, set[str]]:
    tree = ast.parse(STUBS.read_text(encoding="utf-8"))
    names: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[""].add(node.name)
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            names[""].add(node.name)
    return names


def test_the_stubs_match_the_extension_module():
    stubs = stub_names()
    module = {n for n in dir(_glassbox) if not n.startswith("__")}
    assert stubs[""] == module - {"_glassbox"}
    for cls, methods in stubs.items():
        if cls:
            have = {n for n in dir(getattr(_glassbox, cls)) if not n.startswith("__") or n == "__init__"}
            assert methods - {"__init__"} <= have, (cls, methods - have)
            assert have - methods - {"__init__"} == set() or issubclass(getattr(_glassbox, cls), BaseException), (cls, have - methods)


def test_every_public_name_is_documented():
    undocumented = []
    for module in (glassbox, distributed):
        for name in getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]):
            obj = getattr(module, name)
            if name == "__version__" or not (inspect.isclass(obj) or callable(obj)):
                continue
            if not inspect.getdoc(obj):
                undocumented.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and (callable(member) or isinstance(member, property)) and not inspect.getdoc(member):
                        undocumented.append(f"{module.__name__}.{name}.{attr}")
    assert not undocumented, undocumented


def test_version_is_the_workspaces():
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text(encoding="utf-8")
    version = cargo.split("[workspace.package]")[1].split('version = "')[1].split('"')[0]
    assert glassbox.__version__ == version


def test_set_threads_sizes_the_pool_once(tmp_path):
    script = """
import glassbox
glassbox.set_threads(1)
glassbox.set_threads(1)
try:
    glassbox.set_threads(2)
except ValueError as e:
    print(e, flush=True)
glassbox.zoo_build("glyph-inr", "zoo", count=80, threads=2, quiet=True)  # a pool of its own
print("built with 2 threads", flush=True)
try:
    glassbox.set_threads(0)
except ValueError as e:
    print(e, flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "the thread pool of this process already has 1 threads; it cannot be resized to 2"
    assert lines[1].startswith("80 models fitted in ") and lines[2] == "built with 2 threads"
    assert lines[3] == "--threads must be at least 1 (got 0)"


def test_a_command_runs_after_library_calls_have_started_the_pool(tmp_path):
    script = """
import numpy as np, glassbox
sae = glassbox.train_sae(np.ones((64, 8), np.float32), d_sae=16, k=2, steps=2)
sae.encode(np.ones((4096, 8), np.float32))
glassbox.zoo_build("glyph-inr", "zoo", count=80, quiet=True)
print("built")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "built"
