"""Faults: SIGKILL and resume, interrupted writes, NaN loss, determinism."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, csv_text, learnable_faces, run_script, write_csv

from ferkit import fer2013
from ferkit.files import atomic_output


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    images, labels = learnable_faces(60, seed=5)
    return write_csv(tmp_path_factory.mktemp("small") / "small.csv", csv_text("ntu_train", images, labels))


def test_sigkill_then_rerun_resumes_from_last_finished_epoch(tmp_path, small_csv):
    out, log = tmp_path / "m.keras", tmp_path / "log.csv"
    command = [sys.executable, "train_dnn.py", "--train", small_csv, "--epochs", "6", "--batch-size", "16",
               "--out", str(out), "--log", str(log), "--curves", ""]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while len(read_rows(log)) < 2 and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    logged = len(read_rows(log))
    assert 2 <= logged < 6, "the run should be killed mid-way"
    second = run_script(*command[1:])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout
    rows = read_rows(log)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # The second run starts at the epoch after the last one logged, or re-trains that one at most.
    first_epoch = int(second.stdout.split("Epoch ")[1].split("/")[0])
    assert logged <= first_epoch <= logged + 1
    # The learning-rate schedule continued instead of restarting its warm-up:
    # it matches the schedule evaluated at the end of each epoch.
    from ferkit import recipes
    from ferkit.optim import make_schedule

    steps = int(np.ceil(len(fer2013.split_indices(fer2013.load_csv(small_csv), 0.1, 0)[0]) / 16))
    recipe = dict(recipes.PRESETS["dnn"], epochs=6)
    schedule = make_schedule(recipe, steps)
    expected = [float(schedule(e * steps)) for e in range(1, 7)]
    np.testing.assert_allclose([float(r["lr"]) for r in rows], expected, rtol=1e-4)
    from ferkit.models import load_model

    assert load_model(str(out)).output_shape == (None, 7)
    assert not (tmp_path / "m.keras.resume").exists()


def test_interrupted_write_leaves_old_file_or_none(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            open(tmp, "w").write("partial")
            raise KeyboardInterrupt
    assert not target.exists() and os.listdir(tmp_path) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            open(tmp, "w").write("new but broken")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.csv"]
    with atomic_output(target) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new"
    umask = os.umask(0o022)
    try:
        with atomic_output(target) as tmp:
            open(tmp, "w").write("newer")
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644  # As readable as a plainly written file.


def test_killed_predict_leaves_no_partial_submission(tmp_path, tiny_data, tiny_model):
    """SIGKILL at a random moment: afterwards the submission is absent or whole."""
    out = tmp_path / "s.csv"
    for delay in (2.0, 5.0):
        run = subprocess.Popen([sys.executable, "predict.py", "--model", tiny_model, "--test", tiny_data["test"],
                                "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        if out.exists():
            assert len(out.read_text().splitlines()) == tiny_data["n_test"] + 1


def test_nan_loss_stops_with_a_message_and_keeps_the_good_model(tmp_path, small_csv):
    out = tmp_path / "m.keras"
    result = run_script("train_dnn.py", "--train", small_csv, "--epochs", "3", "--lr", "1e30",
                        "--out", str(out), "--curves", "")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "loss became nan" in result.stderr.lower() or "loss became inf" in result.stderr.lower()


def test_deterministic_runs_give_identical_weights(tmp_path, small_csv):
    from ferkit.models import load_model

    weights = []
    for run in ("a", "b"):
        out = tmp_path / f"{run}.keras"
        result = run_script("train_dnn.py", "--train", small_csv, "--epochs", "1", "--seed", "3", "--deterministic",
                            "--out", str(out), "--log", str(tmp_path / f"{run}.csv"), "--curves", "")
        assert result.returncode == 0, result.stderr[-3000:]
        weights.append(load_model(str(out)).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
