"""--strategy: mirrored on two logical CPU devices, and two real workers with
TF_CONFIG on loopback ports, each for one epoch on a tiny CSV."""
import json
import os
import socket
import subprocess
import sys

from conftest import ROOT, assert_one_line_error, run_main, run_script

from ferkit.models import load_model

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
    assert load_model(str(out)).output_shape == (None, 7)


def test_two_workers_on_loopback(tmp_path, tiny_data):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    runs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        command = [sys.executable, "train_dnn.py", "--strategy", "multiworker", "--train", tiny_data["train"],
                   "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "W.keras"), "--curves", ""]
        runs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert "2 replica(s), global batch 32" in stdout, stdout
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
