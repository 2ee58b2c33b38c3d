"""A quiet first run: the scripts print their own lines, not TensorFlow's C++
logging, and --verbose (or FERKIT_VERBOSE=1) brings that logging back."""
import re

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

from ferkit.programs import cli

TF_LOG = re.compile(r"^[IWEF]0000 |cuInit|absl::InitializeLog", re.M)


def tf_lines(stderr):
    return [line for line in stderr.splitlines() if TF_LOG.search(line)]


def test_the_filter_knows_tensorflow_lines_from_others():
    from ferkit.quiet import TF_LOG_LINE

    ours = ["error: data/x.csv, line 3: 2303 pixels, expected 2304", "UserWarning: something in Python", "Epoch 1/2"]
    theirs = ["I0000 00:00:1796288136.442793    3904 port.cc:153] oneDNN custom operations are on.",
              "E0000 00:00:1796288141.101311    3904 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
              "W0000 00:00:1796288141.101311    3904 util.cc:131] oneDNN supports DT_HALF only on AVX-512",
              "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"]
    assert not any(TF_LOG_LINE.match(line) for line in ours)
    assert all(TF_LOG_LINE.match(line) for line in theirs)


def test_training_and_predicting_print_no_tensorflow_logging(tiny_data, tmp_path):
    out = str(tmp_path / "dnn.keras")  # The DNN: the same training path as the CNN's, in fewer seconds.
    trained = run_script("train_dnn.py", "--train", tiny_data["train"], "--epochs", "1", "--batch-size", "32",
                         "--width", "0.25", "--out", out, "--curves", "")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert tf_lines(trained.stderr) == [], trained.stderr[-3000:]
    assert "epoch 1/1" in trained.stdout
    predicted = run_script("predict.py", "--model", out, "--test", tiny_data["test"], "--out", str(tmp_path / "s.csv"))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert tf_lines(predicted.stderr) == [], predicted.stderr[-3000:]
    loud = run_script("predict.py", "--verbose", "--model", out, "--test", tiny_data["test"],
                      "--out", str(tmp_path / "s2.csv"))
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert tf_lines(loud.stderr), "--verbose should show TensorFlow's logging"


@pytest.mark.parametrize("verbose", [False, True])
def test_emotions_with_the_keras_model(tmp_path, verbose):
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        Image.fromarray(np.asarray(image.convert("RGB"))).save(tmp_path / "hopper.jpg")
    flags = ["--verbose"] if verbose else []
    result = run_script("emotions.py", *flags, str(tmp_path / "hopper.jpg"), "--model",
                        cli.released_model(cli.EMOTIONS_MODEL), "--csv", str(tmp_path / "faces.csv"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert bool(tf_lines(result.stderr)) == verbose, result.stderr[-3000:]
