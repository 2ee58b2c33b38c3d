"""--strategy: mirrored on two logical CPU devices, and two real workers with
TF_CONFIG on loopback ports, each for one epoch on a tiny CSV."""
import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error, run_main, run_script

from ferkit.nets.models import load_model

TWO_CPUS = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import train_dnn
train_dnn.main(sys.argv[1:])
"""


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_on_two_logical_cpus(tmp_path, tiny_data):
    out = tmp_path / "m.keras"
    result = run_script("-c", TWO_CPUS, "--strategy", "mirrored", "--train", tiny_data["train"], "--epochs", "1",
                        "--batch-size", "16", "--out", str(out), "--curves", "")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy, 2 replica(s), global batch 32" in result.stdout
    # The global batch is what the epoch steps through: 126 training faces in 4 steps of 32, not 8 of 16.
    import re

    assert re.search(r"^4/4 - ", result.stdout, re.M), result.stdout[-2000:]
    assert load_model(str(out)).output_shape == (None, 7)


def test_two_workers_on_loopback(tmp_path, tiny_data):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    runs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        # A balanced loss and selection by mean class recall: the multi-worker loop trains the loss the flags
        # ask for (test below) and logs the score --select reads, or no epoch would be saved.
        command = [sys.executable, "train_dnn.py", "--strategy", "multiworker", "--train", tiny_data["train"],
                   "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "W.keras"), "--curves", "",
                   "--balance", "logit-adjust", "--select", "mean_recall"]
        runs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [run.communicate(timeout=600) for run in runs]  # Read the pipes to the end, then the exit status.
    results = [(run.returncode, stdout, stderr) for run, (stdout, stderr) in zip(runs, outputs)]
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert "2 replica(s), global batch 32" in stdout, stdout
        assert "balance: logit-adjust" in stdout and "best validation mean_recall" in stdout, stdout
    assert load_model(str(tmp_path / "W.keras")).output_shape == (None, 7)
    assert not list(tmp_path.glob("W.keras.resume*"))


def test_multiworker_without_a_cluster_is_a_usage_error(tmp_path, tiny_data, monkeypatch):
    """Checked before any strategy is made, so in this process."""
    command = ["train_dnn.py", "--strategy", "multiworker", "--train", tiny_data["train"], "--out", str(tmp_path / "m.keras")]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert_one_line_error(run_main(*command), "--strategy multiworker needs TF_CONFIG")
    monkeypatch.setenv("TF_CONFIG", '{"task": {"index": 0}}')
    assert_one_line_error(run_main(*command), "TF_CONFIG is not a cluster description")
    assert not (tmp_path / "m.keras").exists()


def test_the_multiworker_step_trains_the_loss_the_flags_ask_for():
    """One batch through the multi-worker loop's loss (distribute.per_example_loss,
    averaged over the global batch as its step does) equals the loss the
    single-process path (Keras' evaluate) computes, for each balance mode and
    FER+'s multi-target loss; plain cross-entropy, which the loop used to
    train whatever the flags said, does not."""
    import keras
    import numpy as np
    import tensorflow as tf

    from ferkit.train.distribute import per_example_loss
    from ferkit.train.optim import compile_model
    from ferkit.train.recipes import PRESETS

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 48, 48, 1)).astype("float32")
    y = np.eye(8, dtype="float32")[rng.integers(0, 8, 32)]
    prior = np.array([0.3, 0.01, 0.05, 0.25, 0.12, 0.1, 0.16, 0.01])
    for balance, label_mode in (("logit-adjust", "crossentropy"), ("reweight", "crossentropy"), ("none", "multitarget")):
        recipe = dict(PRESETS["dnn"], balance=balance, tau=1.0)
        model = compile_model("dnn", recipe, 1, num_classes=8, label_mode=label_mode, prior=prior, width=0.25)
        single = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["loss"]
        probs = model(x, training=False)
        distributed = float(tf.nn.compute_average_loss(per_example_loss(model)(y, probs), global_batch_size=32))
        assert distributed == pytest.approx(single, rel=1e-5), (balance, label_mode)
        plain = float(tf.reduce_mean(keras.losses.categorical_crossentropy(y, probs, label_smoothing=0.1)))
        assert abs(plain - single) > 1e-3, (balance, label_mode)
