"""Model cards (card.py): a trained model says how it was made, its ONNX copy
says the same, `ferkit info` prints it without TensorFlow; calibrate.py end
to end, its card included."""
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
from conftest import ROOT, run_main

from ferkit.nets.card import describe, read_card


def test_a_trained_model_carries_its_recipe_data_and_the_epoch_it_kept(tiny_model, tiny_data):
    card = read_card(tiny_model)
    assert card["config"]["train"] == tiny_data["train"] and card["config"]["width"] == 0.25
    assert card["recipe"]["epochs"] == 1 and card["recipe"]["batch_size"] == 32 and card["recipe"]["precision"]
    with open(tiny_data["train"], "rb") as f:
        assert card["data"]["train"] == {"file": "train.csv", "bytes": os.path.getsize(tiny_data["train"]),
                                         "sha256": hashlib.sha256(f.read()).hexdigest()}
    assert card["epoch"] == 1 and 0 <= card["validation"]["accuracy"] <= 1 and "mean_recall" in card["validation"]
    log = os.path.splitext(tiny_model)[0] + ".log.csv"
    with open(log) as f:
        row = dict(zip(*[line.strip().split(",") for line in f.readlines()[:2]]))
    assert abs(card["validation"]["accuracy"] - float(row["val_accuracy"])) < 1e-6  # The log's epoch, not another.
    assert card["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", card["commit"])


def test_the_onnx_copy_carries_the_same_card(tiny_model, tmp_path):
    out = str(tmp_path / "cnn.onnx")
    assert run_main("export.py", tiny_model, "--out", out).returncode == 0
    assert read_card(out) == read_card(tiny_model)
    lines = describe(out)
    assert lines[1].startswith("classes: Angry, Disgust") and any(l.startswith("kept: epoch 1; validation") for l in lines)
    assert any(l.startswith("data (train): train.csv") for l in lines)


def test_ferkit_info_reads_an_onnx_card_without_tensorflow(tiny_model, tmp_path):
    out = str(tmp_path / "cnn.onnx")
    assert run_main("export.py", tiny_model, "--out", out).returncode == 0
    code = ("import sys; from ferkit.programs.command import main; sys.argv = ['ferkit', 'info', sys.argv[1]]\n"
            "try:\n    main()\nfinally:\n    assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'")
    result = subprocess.run([sys.executable, "-c", code, out], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kept: epoch 1" in result.stdout and "config: " in result.stdout and "recipe: " in result.stdout
    # python -m ferkit is the same command; --json gives the card itself.
    as_module = subprocess.run([sys.executable, "-m", "ferkit", "info", "--json", out], cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
    assert as_module.returncode == 0 and json.loads(as_module.stdout) == read_card(tiny_model)
    missing = subprocess.run([sys.executable, "-m", "ferkit", "info", str(tmp_path / "none.onnx")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "none.onnx: no such model file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_calibrate_folds_the_prior_shift_and_temperature_into_the_model(tiny_model, tiny_data, tmp_path):
    import calibrate
    from ferkit.train import training
    from ferkit.train.balance import class_prior
    from ferkit.nets.models import load_model

    out = str(tmp_path / "calibrated.keras")
    result = run_main("calibrate.py", "--model", tiny_model, "--train", tiny_data["train"], "--tau", "0.5",
                      "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    card = read_card(out)
    tau, temperature = card["calibration"]["tau"], card["calibration"]["temperature"]
    assert tau == 0.5 and temperature > 0 and abs(temperature - 1) > 1e-3
    assert card["source"]["file"] == "cnn.keras" and card["source_card"]["epoch"] == 1
    # The folded model gives what the corrections give the unfolded one, computed here on their own.
    train_set, val_set, _ = training.load_split(tiny_data["train"])
    prior = class_prior(train_set.labels, 7)
    source, folded = load_model(tiny_model, "float32"), load_model(out, "float32")
    views = calibrate.views_of(source, val_set.images, "flip")
    want = calibrate.corrected(views, temperature, prior, tau)
    got = np.mean(calibrate.views_of(folded, val_set.images, "flip"), axis=0)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # And the corrections did something: a prior shift of +0.5 moves probability towards the rarer classes.
    before = np.mean(views, axis=0)
    rarest = int(np.argmin(prior))
    assert got[:, rarest].mean() > before[:, rarest].mean() * 0.999
    assert np.abs(got - before).max() > 1e-3
    assert re.search(r"match the corrected ones within (\S+)", result.stdout)
