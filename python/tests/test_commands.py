"""The run-folder commands from Python: argument translation, help, errors, and every method
entry point on small settings."""

from __future__ import annotations

import csv
import inspect
import json

import numpy as np
import pytest

import glassbox
from glassbox.commands import command_args
from conftest import TINY_GPT2

STORY = "Once upon a time there was a little girl called Lily. She loved to play outside in the garden with her dog."


def test_keyword_options_become_the_command_line():
    assert command_args(["zoo", "build"], "glyph-inr", out="z", per_tree=8, quiet=True, resume=False, shard=None) == [
        "zoo", "build", "glyph-inr", "--out", "z", "--per-tree", "8", "--quiet"]
    assert command_args(["report"], ["a", "b"], model=["m1", "m2"], lambda_=2) == ["report", "a", "b", "--model", "m1", "--model", "m2", "--lambda", "2"]


def test_cli_names_every_command_and_shows_its_help():
    assert repr(glassbox.cli.zoo.build) == "<glassbox command glassbox zoo build>"
    assert "--shard" in inspect.getdoc(glassbox.cli.zoo.build)
    assert "Usage: glassbox sae stream" in glassbox.cli.sae.stream.__doc__
    with pytest.raises(ValueError, match="unrecognized subcommand 'nope'"):
        glassbox.cli.nope.__doc__


def test_errors_carry_the_command_lines_message(tmp_path):
    with pytest.raises(ValueError, match="unknown zoo preset 'cifar-gs'"):
        glassbox.zoo_build("cifar-gs", tmp_path / "z")
    with pytest.raises(ValueError, match="unexpected argument '--bogus'"):
        glassbox.run("zoo", "build", "glyph-inr", "--bogus")
    with pytest.raises(glassbox.FormatError, match="not a checkpoint folder"):
        glassbox.lib(tmp_path / "missing", tmp_path / "lib")
    glassbox.run("--help")  # prints and returns


def test_lib_bilinear_acts_and_report(tmp_path):
    mlp = glassbox.train("mlp", "modadd", tmp_path / "runs" / "mlp", p=13, train_fraction=0.6, batch_size=512, lr=1e-2, embed=8, hidden=[32], epochs=40, quiet=True)
    run = glassbox.lib(mlp.path, tmp_path / "runs" / "lib", quiet=True)
    assert (run.path / "figures" / "graph-lib.svg").is_file() and run.figures()
    assert "lib.features_needed.embed" in run.metrics
    bil = glassbox.train("bilinear", "glyphs", tmp_path / "runs" / "bil", hidden=[16], glyph_train=600, glyph_test=200, epochs=5, quiet=True)
    analysis = glassbox.bilinear(bil.path, tmp_path / "runs" / "bil-analysis", quiet=True)
    assert analysis.info["bilinear"]
    acts = glassbox.acts(bil.path, tmp_path / "acts.safetensors", sites="embed,logits", limit=30, quiet=True)
    from safetensors.numpy import load_file

    assert {k: v.shape for k, v in load_file(str(acts)).items()} == {"embed": (30, 16), "logits": (30, 8)}
    html = glassbox.report(tmp_path / "runs", tmp_path / "report.html", title="from Python")
    text = html.read_text(encoding="utf-8")
    assert "from Python" in text and "<svg" in text
    assert repr(run) == f"Run({str(run.path)!r})"


def test_a_zoo_read_by_probegen_vanilla_probes_and_statnn(tmp_path):
    zoo = glassbox.zoo_build("glyph-inr", tmp_path / "zoo", count=80, quiet=True)
    assert json.loads((zoo / "zoo.json").read_text())
    reader = glassbox.probe_train(zoo, tmp_path / "reader", probes=8, epochs=2, quiet=True)
    assert reader.info["metrics"]
    stat = glassbox.probe_train(zoo, tmp_path / "statnn", method="statnn", epochs=2, quiet=True)
    assert stat.info["metrics"]
    vanilla = glassbox.probe_train(zoo, tmp_path / "vanilla", method="vanilla", probes=8, epochs=2, quiet=True)
    assert vanilla.info["metrics"] and vanilla.info != reader.info
    predictions = glassbox.probe_predict(reader.path, zoo, tmp_path / "pred.csv")
    rows = list(csv.reader(predictions.open()))
    assert len(rows) == 81, "a header and 80 models"


def test_trees_and_probex_predict_what_fine_tunes_were_trained_on(tmp_path):
    zoo = glassbox.zoo_build("tree-world", tmp_path / "zoo", per_tree=24, hidden=16, quiet=True)
    trees = glassbox.trees(zoo, "layers.1.weight", tmp_path / "trees")
    assert (trees.path / "figures" / "dendrogram.svg").is_file()
    experts = glassbox.probex_train(zoo, "layers.1.weight", tmp_path / "px", ranks="4,4,8", epochs=5, quiet=True)
    assert isinstance(experts.metrics["tree 3: ProbeX test"], float)
    glassbox.cli.zoo.export(zoo, out=tmp_path / "ckpts")
    csv_path = glassbox.probex_predict(experts.path, tmp_path / "ckpts", tmp_path / "pred.csv")
    assert len(csv_path.read_text().splitlines()) == 97


def test_sae_stream_and_the_universal_sae_on_the_tiny_model(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("\n\n".join(f"{STORY} Day {i} was sunny & warm." for i in range(30)))
    sae = glassbox.sae_stream(str(TINY_GPT2), "blocks.0.hook_resid_post", text, tmp_path / "sae", architecture="topk", k=4, expansion=2, batch=32, tokens=3000, lr=0.01, context=64, quiet=True)
    assert (sae.d_in, sae.d_sae, sae.hook_name) == (64, 128, "blocks.0.hook_resid_post")
    assert (tmp_path / "sae" / "training.json").is_file()
    run = glassbox.sae_universal(
        [str(TINY_GPT2), str(TINY_GPT2)], text, tmp_path / "usae",
        hook="blocks.0.hook_resid_post,blocks.1.hook_resid_post", eval_text=text, context=64, m=32, k=4, steps=40, batch=32, cards=3, top=2, quiet=True)
    assert run.metrics
