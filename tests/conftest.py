"""Shared test helpers: tiny generated FER2013 CSVs in every Kaggle layout, a
learnable synthetic data set, and a small model trained once per session."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # The scripts, importable for run_main.

from ferkit.data.fer2013 import NUM_CLASSES, USAGES  # noqa: E402

HEADERS = {
    "ntu_train": "label,feature",
    "ntu_test": "id,feature",
    "fer2013": "emotion,pixels,Usage",
    "icml": "emotion, Usage, pixels",
    "kaggle_train": "emotion,pixels",
    "kaggle_test": "pixels",
}


def random_faces(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8), rng.integers(0, NUM_CLASSES, size=n)


def csv_text(layout, images, labels=None, ids=None, usage=None):
    """The text of a CSV in one of the Kaggle layouts."""
    rows = [HEADERS[layout]]
    for i, image in enumerate(images):
        pixels = " ".join(map(str, image.reshape(-1).tolist()))
        label = labels[i] if labels is not None else 0
        use = USAGES[usage[i]] if usage is not None else "Training"
        rows.append({
            "ntu_train": f"{label},{pixels}",
            "ntu_test": f"{ids[i] if ids is not None else i},{pixels}",
            "fer2013": f"{label},{pixels},{use}",
            "icml": f"{label}, {use}, {pixels}",
            "kaggle_train": f"{label},{pixels}",
            "kaggle_test": pixels,
        }[layout])
    return "\n".join(rows) + "\n"


def write_csv(path, text, gz=False):
    data = text.encode() if isinstance(text, str) else text
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def learnable_faces(n_per_class=60, seed=0):
    """Faces whose class sets the period of horizontal stripes (random phase,
    noise): invariant to flips and small shifts, so a CNN can learn it."""
    rng = np.random.default_rng(seed)
    periods = [3, 4, 5.5, 7.5, 10, 14, 20]
    y = np.arange(48)[None, :, None]
    images, labels = [], []
    for c, period in enumerate(periods):
        phase = rng.uniform(0, 2 * np.pi, size=(n_per_class, 1, 1))
        stripes = 128 + 90 * np.sin(2 * np.pi * y / period + phase)
        noisy = stripes + rng.normal(0, 25, size=(n_per_class, 48, 48))
        images.append(np.clip(noisy, 0, 255).astype(np.uint8)[..., None])
        labels += [c] * n_per_class
    order = rng.permutation(len(labels))
    return np.concatenate(images)[order], np.array(labels)[order]


def run_script(*args, timeout=600):
    """Run a repository script in a fresh Python; returns CompletedProcess.
    For what needs its own process: start-up output, signals, distribution,
    settings TensorFlow takes only before it starts. Else run_main."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", FER2013_CACHE=os.environ.get("FER2013_CACHE", ""))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_main(script, *args):
    """A script run as `python script args` would run it, but in this
    process, so TensorFlow starts once per test session instead of once per
    run (some 9 s each on 2 cores): its main() through cli.run, its exit
    status, stdout and stderr as a CompletedProcess. Keras' global state is
    reset afterwards, so one run's model or precision cannot leak into the
    next."""
    import contextlib
    import importlib
    import io

    from ferkit.programs import cli

    module = importlib.import_module(os.path.splitext(os.path.basename(script))[0])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.run(module.main, [str(a) for a in args])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        if "keras" in sys.modules:
            import keras

            keras.backend.clear_session()
            keras.mixed_precision.set_global_policy("float32")
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# Test files by the time they take, longest first (measured on 2 cores). The
# two workers take whole files as they become free, so a long file handed
# out last would leave the other worker idle while it runs.
LONGEST_FIRST = ["test_bench.py", "test_reliability.py", "test_serve.py", "test_ferplus.py", "test_quiet.py",
                 "test_distribute.py", "test_training.py", "test_scripts.py", "test_export.py", "test_precision.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # Stable: each file keeps its order.


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test session parses into its own cache folder, never the user's."""
    monkeypatch.setenv("FER2013_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A learnable 7-class training CSV and a test CSV with ids (and a key)."""
    folder = tmp_path_factory.mktemp("data")
    images, labels = learnable_faces(20, seed=1)
    train = write_csv(folder / "train.csv", csv_text("ntu_train", images, labels))
    test_images, test_labels = learnable_faces(6, seed=2)
    ids = np.arange(len(test_images))
    test = write_csv(folder / "test.csv", csv_text("ntu_test", test_images, ids=ids))
    key = folder / "labels.csv"
    key.write_text("id,label\n" + "".join(f"{i},{l}\n" for i, l in zip(ids, test_labels)))
    return {"train": train, "test": test, "labels": str(key), "n_test": len(test_images), "folder": folder}


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """A CNN a quarter as wide as the release, trained for one epoch on the
    tiny CSV through train_cnn.py: a real model file for the scripts that
    read one (the full architecture trains in test_training.py)."""
    folder = tmp_path_factory.mktemp("model")
    out = str(folder / "cnn.keras")
    result = run_main("train_cnn.py", "--train", tiny_data["train"], "--epochs", "1", "--batch-size", "32",
                      "--width", "0.25", "--out", out, "--curves", str(folder / "curves.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def ferplus_votes_row(usage, name, votes):
    """One fer2013new.csv row; votes: {FER+ column name: count}."""
    columns = FERPLUS_HEADER.split(",")[2:]
    return ",".join([usage, name] + [str(votes.get(c, 0)) for c in columns])


def write_ferplus_pair(folder, n_per_class=20, seed=0, private=False):
    """A learnable fer2013.csv (emotion,pixels,Usage) and its fer2013new.csv:
    each face gets 8 votes for its class and 2 for a neighbour's, every
    fifth row is PublicTest (with private=True, every fifth from the third
    is PrivateTest, as in the full files), and the last row is unnamed (not
    a face)."""
    from ferkit.data.ferplus import COLUMN_CLASS

    images, labels = learnable_faces(n_per_class, seed=seed)
    rows_at = np.arange(len(labels))
    usage = np.where(rows_at % 5 == 0, 1, np.where(private & (rows_at % 5 == 2), 2, 0))
    columns = FERPLUS_HEADER.split(",")[2:]
    column_of = {k: columns[j] for j, k in enumerate(COLUMN_CLASS)}
    rows = [FERPLUS_HEADER]
    for i, c in enumerate(labels):
        name = "" if i == len(labels) - 1 else f"fer{i:07d}.png"
        votes = {column_of[int(c)]: 8, column_of[(int(c) + 1) % 7]: 2}
        rows.append(ferplus_votes_row(USAGES[usage[i]], name, votes if name else {"NF": 10}))
    faces = write_csv(os.path.join(folder, "fer2013.csv"), csv_text("fer2013", images, labels, usage=usage))
    votes = write_csv(os.path.join(folder, "fer2013new.csv"), "\n".join(rows) + "\n")
    return faces, votes, labels, usage
