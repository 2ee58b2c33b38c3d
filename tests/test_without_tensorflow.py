"""Emotions without TensorFlow: the released ONNX copies through emotions.py
and predict.py, with neither tensorflow nor keras imported. CI runs this file
a second time in a virtual environment made from requirements-inference.txt
alone, where TensorFlow is not installed at all."""
import importlib.util
import json
import os

import numpy as np
import pytest
from conftest import ROOT, csv_text, learnable_faces, run_script, write_csv

# Spelled out, not asked of cli.released_model: a test below checks that function.
RELEASED_ONNX = os.path.join(ROOT, "models", "fer2013_cnn.onnx")
# Runs a script as `python script.py ...` would, then reports what it imported.
RUN_AND_LIST_IMPORTS = (
    "import runpy, sys; script = sys.argv[1]; sys.argv = sys.argv[1:]; sys.path.insert(0, '.')\n"
    "try:\n    runpy.run_path(script, run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
    "print('IMPORTED', 'tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(code)\n"
)


def run_listing_imports(*args):
    result = run_script("-c", RUN_AND_LIST_IMPORTS, *args)
    imported = [line for line in result.stdout.splitlines() if line.startswith("IMPORTED")]
    return result, imported[-1] if imported else ""


def grace_hopper():
    import matplotlib.cbook

    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def test_emotions_on_a_photo_imports_no_tensorflow(tmp_path):
    out = tmp_path / "faces.json"
    result, imported = run_listing_imports("emotions.py", grace_hopper(), "--model", RELEASED_ONNX, "--json", str(out),
                                           "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert imported == "IMPORTED False False"
    records = json.loads(out.read_text())
    assert len(records) == 1 and records[0]["box"] is not None
    assert sum(records[0]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert (tmp_path / "grace_hopper.emotions.png").stat().st_size > 10_000


def test_predict_with_the_onnx_model_imports_no_tensorflow(tmp_path):
    images, labels = learnable_faces(3, seed=7)
    test = write_csv(tmp_path / "test.csv", csv_text("ntu_test", images, ids=np.arange(len(images))))
    key = tmp_path / "key.csv"
    key.write_text("id,label\n" + "".join(f"{i},{l}\n" for i, l in enumerate(labels)))
    out = tmp_path / "submission.csv"
    result, imported = run_listing_imports("predict.py", "--model", RELEASED_ONNX, "--test", test,
                                           "--labels", str(key), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert imported == "IMPORTED False False"
    assert "precision: float32 (ONNX Runtime)" in result.stdout and "accuracy" in result.stdout
    rows = out.read_text().splitlines()
    assert rows[0] == "id,label" and len(rows) == len(images) + 1


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here")
def test_without_tensorflow_the_default_model_is_the_onnx_copy(tmp_path):
    from ferkit.programs import cli

    assert cli.released_model() == RELEASED_ONNX
    result = run_script("emotions.py", grace_hopper(), "--json", str(tmp_path / "f.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ONNX Runtime" in result.stdout


@pytest.mark.parametrize("content, problem", [
    (b"not a model at all", "not a readable ONNX model"),
    (b"", "not a readable ONNX model"),
])
def test_a_file_that_is_not_an_onnx_model_is_one_line(tmp_path, content, problem):
    from conftest import assert_one_line_error

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    result = run_script("emotions.py", grace_hopper(), "--model", str(bad))
    assert_one_line_error(result, "bad.onnx", problem)


def test_confusion_with_the_onnx_model_imports_no_tensorflow(tmp_path):
    images, labels = learnable_faces(4, seed=8)
    data = write_csv(tmp_path / "train.csv", csv_text("ntu_train", images, labels))
    out = tmp_path / "confusion.png"
    result, imported = run_listing_imports("confusion.py", "--model", RELEASED_ONNX, "--data", data,
                                           "--split", "all", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert imported == "IMPORTED False False"
    assert "mean class recall" in result.stdout
    assert out.stat().st_size > 10_000 and "mean recall" in (tmp_path / "confusion.txt").read_text()


def test_the_page_serves_in_this_environment(tmp_path):
    """serve.py as a user starts it: /api/health and one photo through /api/emotions."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "serve.py", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=2) as response:
                    health = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                time.sleep(0.5)
        else:
            raise AssertionError("serve.py did not answer /api/health within a minute")
        assert health["runtime"] == "onnxruntime" and "Contempt" in health["classes"]
        request = urllib.request.Request(url + "/api/emotions?photo=1", data=open(grace_hopper(), "rb").read(),
                                         headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert len(answer["faces"]) == 1 and answer["faces"][0]["emotion"] in health["classes"]
        assert set(answer["faces"][0]["keypoints"]) >= {"right_eye", "left_eye"}
    finally:
        server.terminate()
        server.wait(timeout=30)
