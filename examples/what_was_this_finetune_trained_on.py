"""Predict what a fine-tune was trained on from its weights alone: build a population of
fine-tuned models (4 pre-trained roots, each fine-tuned many times on a random half of 20
classes), recover its model trees, train one ProbeX expert per tree, and ask the experts about
fine-tunes they never saw.

    python examples/what_was_this_finetune_trained_on.py [--out DIR] [--small]
"""

import argparse
import ast
import csv
import json
import tempfile
from pathlib import Path

import glassbox

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp()))
parser.add_argument("--small", action="store_true", help="a quick run (as the test suite uses)")
args = parser.parse_args()

size = dict(per_tree=24, hidden=16) if args.small else {}
zoo = glassbox.zoo_build("tree-world", args.out / "zoo", quiet=True, **size)
layer = "layers.1.weight"
glassbox.trees(zoo, layer, args.out / "trees", quiet=True)  # prints the trees it finds and their purity
experts = glassbox.probex_train(zoo, layer, args.out / "experts", quiet=True, **(dict(ranks="4,4,8", epochs=5) if args.small else {}))

glassbox.cli.zoo.export(zoo, out=args.out / "checkpoints", quiet=True)
predictions = glassbox.probex_predict(experts.path, args.out / "checkpoints", args.out / "predictions.csv")
labels = json.loads((zoo / "labels.json").read_text())
test = set(json.loads((zoo / "zoo.json").read_text())["splits"]["test"])
rows = [r for r in csv.DictReader(predictions.open()) if int(r["name"].split("_")[1]) in test]
print(f"\n{len(rows)} fine-tunes the experts never saw:")
print("fine-tune    tree  trained on                           predicted                            right")
for row in rows[:12]:
    truth = set(ast.literal_eval(labels[int(row["name"].split("_")[1])]["dataset_chosen_targets"]))
    predicted = set(ast.literal_eval(row["predicted_classes"]))
    short = lambda classes: ",".join(c.removeprefix("class_") for c in sorted(classes))
    right = sum((c in truth) == (c in predicted) for c in (f"class_{i:02d}" for i in range(20)))
    print(f"{row['name']}  {row['tree']:>4}  {short(truth):35s}  {short(predicted):35s}  {right}/20")
