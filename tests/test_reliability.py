"""Faults: SIGKILL and resume, interrupted writes, NaN loss, determinism."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, csv_text, learnable_faces, run_main, run_script, write_csv

from ferkit.data import fer2013
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
               "--width", "0.25", "--out", str(out), "--log", str(log), "--curves", ""]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while len(read_rows(log)) < 2 and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    logged = len(read_rows(log))
    assert 2 <= logged < 6, "the run should be killed mid-way"
    second = run_main(*command[1:], "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout
    rows = read_rows(log)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # The second run starts at the epoch after the last one logged, or re-trains that one at most.
    first_epoch = int(second.stdout.split("Epoch ")[1].split("/")[0])
    assert logged <= first_epoch <= logged + 1
    # The learning-rate schedule continued instead of restarting its warm-up:
    # it matches the schedule evaluated at the end of each epoch.
    from ferkit.train import recipes
    from ferkit.train.optim import make_schedule

    steps = int(np.ceil(len(fer2013.split_indices(fer2013.load_csv(small_csv), 0.1, 0)[0]) / 16))
    recipe = dict(recipes.PRESETS["dnn"], epochs=6)
    schedule = make_schedule(recipe, steps)
    expected = [float(schedule(e * steps)) for e in range(1, 7)]
    np.testing.assert_allclose([float(r["lr"]) for r in rows], expected, rtol=1e-4)
    from ferkit.nets.models import load_model

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


def test_predict_killed_while_writing_leaves_the_old_submission(tmp_path, tiny_data, tiny_model):
    """predict.py SIGKILLed halfway through writing its rows (its csv writer
    kills the process after the first rows): the old submission is still
    there, whole; a run that is not killed replaces it."""
    out = tmp_path / "s.csv"
    out.write_text("id,label\nold\n")
    killer = ("import csv, os, runpy, signal, sys\n"
              "real = csv.writer\n"
              "class Dying:\n"
              "    def __init__(self, f): self.w = real(f)\n"
              "    def writerow(self, row): self.w.writerow(row)\n"
              "    def writerows(self, rows):\n"
              "        for i, row in enumerate(rows):\n"
              "            self.w.writerow(row)\n"
              "            if i == 2: sys.stdout.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
              "csv.writer = Dying\n"
              "sys.argv = sys.argv[1:]; runpy.run_path('predict.py', run_name='__main__')\n")
    killed = run_script("-c", killer, "predict.py", "--model", tiny_model, "--test", tiny_data["test"], "--out", str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert out.read_text() == "id,label\nold\n"
    assert any(name.startswith(".tmp-") for name in os.listdir(tmp_path))  # It was killed mid-write, not before.
    whole = run_main("predict.py", "--model", tiny_model, "--test", tiny_data["test"], "--out", str(out))
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert len(out.read_text().splitlines()) == tiny_data["n_test"] + 1


def test_nan_loss_stops_with_a_message_and_keeps_the_good_model(tmp_path, small_csv):
    from ferkit.nets.models import load_model

    out = tmp_path / "m.keras"
    diverge = ["train_dnn.py", "--train", small_csv, "--epochs", "3", "--lr", "1e30", "--width", "0.25", "--out", str(out),
               "--curves", ""]
    result = run_main(*diverge)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "loss became nan" in result.stderr.lower() or "loss became inf" in result.stderr.lower()
    assert "no epoch finished, so no model was saved" in result.stderr and not out.exists()
    # With a good model already at --out, the diverging run leaves it as it was.
    good = run_main("train_dnn.py", "--train", small_csv, "--epochs", "1", "--width", "0.25", "--out", str(out), "--curves", "")
    assert good.returncode == 0, good.stderr[-2000:]
    before = load_model(str(out)).get_weights()
    result = run_main(*diverge, "--log", str(tmp_path / "again.csv"))
    assert result.returncode == 3 and f"the last good model is {out}" in result.stderr, result.stderr[-2000:]
    kept = load_model(str(out))
    assert all(np.array_equal(a, b) for a, b in zip(before, kept.get_weights()))
    assert np.isfinite(kept.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0)).all()


def test_deterministic_runs_give_identical_weights(tmp_path, small_csv):
    """Two --deterministic runs with one seed, and a third with another, in
    one fresh process (determinism, once on, stays on in a process)."""
    from ferkit.nets.models import load_model

    runs = {"a": 3, "b": 3, "c": 4}
    commands = [" ".join(["--train", small_csv, "--epochs", "1", "--seed", str(seed), "--deterministic", "--width", "0.25",
                          "--out", str(tmp_path / f"{run}.keras"), "--log", str(tmp_path / f"{run}.csv"), "--curves", "''"])
                for run, seed in runs.items()]
    code = "import shlex, sys, train_dnn\nfor flags in sys.argv[1:]: train_dnn.main(shlex.split(flags))\n"
    result = run_script("-c", code, *commands)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b, c = (load_model(str(tmp_path / f"{run}.keras")).get_weights() for run in runs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # The negative control: another seed, the same flags, other weights, so
    # the comparison above can fail.
    assert any(not np.array_equal(x, z) for x, z in zip(a, c))


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path, small_csv):
    """--resume insists on a checkpoint: a mistyped --out stops at once
    instead of starting over, and writes nothing."""
    out = tmp_path / "typo.keras"
    result = run_main("train_dnn.py", "--train", small_csv, "--epochs", "1", "--out", str(out), "--resume")
    assert_one_line_error(result, f"--resume: no checkpoint at {out}.resume")
    assert list(tmp_path.iterdir()) == []
