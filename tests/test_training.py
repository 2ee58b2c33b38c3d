"""train_cnn.py and train_dnn.py end to end, learnability, and CLI errors."""
import csv

import pytest
from conftest import assert_one_line_error, csv_text, learnable_faces, run_main, write_csv

from ferkit.nets.models import load_model


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_a_finished_run(result, out, log, curves, epochs, batch_size, classes=7):
    """What every finished training run leaves and says: the effective
    settings, a progress line per epoch with the time left, the log, the
    model, the curves, and no resume checkpoint."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"epochs={epochs}" in result.stdout and f"batch_size={batch_size}" in result.stdout
    rows = read_rows(log)
    assert [r["epoch"] for r in rows] == [str(e) for e in range(1, epochs + 1)]
    assert list(rows[0])[0] == "epoch"
    assert load_model(str(out)).output_shape == (None, classes)
    assert curves.stat().st_size > 10_000
    assert not out.with_name(out.name + ".resume").exists()  # Cleaned up after a finished run.
    # A long run says when it will end: precision at start, then every epoch.
    assert "precision: " in result.stdout
    assert f"epoch 1/{epochs}: " in result.stdout and "estimated total" in result.stdout
    assert f"epoch {epochs}/{epochs}: " in result.stdout and "about 0 min left" in result.stdout
    assert float(rows[0]["minutes_left"]) >= 0 and float(rows[-1]["minutes_left"]) == 0
    return rows


def test_train_dnn_end_to_end(tmp_path, tiny_data):
    # The curves go beside the model by default, never over the report's figures.
    out, log, curves = tmp_path / "m.keras", tmp_path / "log.csv", tmp_path / "m_training.png"
    result = run_main("train_dnn.py", "--train", tiny_data["train"], "--epochs", "2", "--batch-size", "32",
                      "--out", str(out), "--log", str(log))
    assert_a_finished_run(result, out, log, curves, epochs=2, batch_size=32)
    # A warm restart from that model; from a model of another width, a one-line error before any training.
    again = tmp_path / "again.keras"
    warm = run_main("train_dnn.py", "--train", tiny_data["train"], "--epochs", "1", "--init-from", str(out),
                    "--out", str(again), "--curves", "")
    assert warm.returncode == 0 and f"starting from the weights of {out}" in warm.stdout, warm.stderr[-2000:]
    narrow = run_main("train_dnn.py", "--train", tiny_data["train"], "--epochs", "1", "--init-from", str(out),
                      "--width", "0.5", "--out", str(tmp_path / "narrow.keras"))
    assert_one_line_error(narrow, f"--init-from {out}: not a dnn model of width 0.5")
    assert not (tmp_path / "narrow.keras").exists()


def test_time_left_leaves_out_the_first_epoch_and_counts_what_remains():
    from ferkit.train.runlog import progress_line, time_left

    rows = [{"epoch": 1, "seconds": 90.0}, {"epoch": 2, "seconds": 30.0}, {"epoch": 3, "seconds": 60.0}]
    assert time_left(rows[:1], 10) == {"minutes_left": 13.5}  # Only the first so far: 9 x 90 s.
    assert time_left(rows, 10) == {"minutes_left": 5.2}  # 7 epochs x 45 s.
    row = dict(rows[0], val_accuracy=0.5, saved=1, minutes_left=13.5)
    assert progress_line(row, 10) == ("epoch 1/10: 1.50 min, val_accuracy 0.5000 (best, saved); "
                                      "about 14 min left (estimated total 15 min)")


def test_cnn_learns_a_learnable_toy_set(tmp_path):
    """train_cnn.py end to end on seven classes of striped faces: well above
    the 1/7 chance level, with every output a finished run leaves. Half as
    wide as the release, to be quick (the full width trains in test_bench.py's
    precision, epochs and memory runs, and its layers are counted in
    test_models.py)."""
    images, labels = learnable_faces(60, seed=3)
    train = write_csv(tmp_path / "train.csv", csv_text("ntu_train", images, labels))
    out, log, curves = tmp_path / "m.keras", tmp_path / "log.csv", tmp_path / "m_training.png"
    result = run_main("train_cnn.py", "--train", train, "--epochs", "4", "--batch-size", "16", "--preset", "fast",
                      "--width", "0.5", "--val-split", "0.2", "--out", str(out), "--log", str(log))
    rows = assert_a_finished_run(result, out, log, curves, epochs=4, batch_size=16)
    best = max(float(r["val_accuracy"]) for r in rows)
    assert best > 0.6, best


def test_help_shows_every_default():
    result = run_main("train_cnn.py", "--help")
    assert result.returncode == 0
    for flag in ("--train", "--epochs", "--batch-size", "--lr", "--val-split", "--seed", "--limit", "--out", "--log"):
        assert flag in result.stdout
    assert "data/train.csv" in result.stdout and "models/cnn.keras" in result.stdout
    # Flags without a value of their own say what leaving them out does,
    # and nothing contradicts that with a bare None.
    assert "(default: the preset's)" in result.stdout
    assert "(default: None)" not in result.stdout and "(default: False)" not in result.stdout


@pytest.mark.parametrize("case", ["2303 pixels", "label 9", "missing"])
def test_bad_training_csv_is_one_line_and_exit_2(tmp_path, case):
    from test_fer2013 import bad_case

    content, fragments = bad_case(case)
    path = tmp_path / "bad.csv"
    if content is not None:
        write_csv(path, content)
    out = tmp_path / "m.keras"
    result = run_main("train_dnn.py", "--train", str(path), "--epochs", "1", "--out", str(out))
    assert_one_line_error(result, str(path), *fragments)
    assert not out.exists()


def test_the_curves_mark_the_epoch_the_run_kept(tmp_path):
    """A run kept by mean class recall names that epoch on its curves, not the one of best accuracy."""
    from ferkit.train.figures import plot_training_curves

    rows = [{"epoch": str(e), "loss": str(2 - e / 4), "val_loss": str(2 - e / 5), "accuracy": str(e / 4),
             "val_accuracy": str(a), "val_mean_recall": str(r)}
            for e, a, r in ((1, 0.5, 0.4), (2, 0.6, 0.7), (3, 0.8, 0.6))]
    path = tmp_path / "curves.png"
    assert plot_training_curves(rows, str(path), "run", "mean_recall")["epoch"] == "2"
    assert path.stat().st_size > 10_000
    assert plot_training_curves(rows, str(path), "run")["epoch"] == "3"


def test_a_warm_restart_takes_every_layer_but_an_output_of_another_size():
    import keras
    import numpy as np

    from ferkit.train.training import initial_weights

    def net(hidden, classes, seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(hidden), keras.layers.Dense(classes)])

    ferplus, fer2013, other = net(3, 8, seed=1), net(3, 7, seed=2), net(5, 7, seed=3)
    same = initial_weights(ferplus, net(3, 8, seed=4))
    assert all(np.array_equal(a, b) for a, b in zip(same, ferplus.get_weights()))
    # 8 classes into 7: the hidden layer copied, the output layer left as it was made.
    copied = initial_weights(ferplus, fer2013)
    assert [w.shape for w in copied] == [w.shape for w in fer2013.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(copied[:2], ferplus.get_weights()[:2]))
    assert all(np.array_equal(a, b) for a, b in zip(copied[2:], fer2013.get_weights()[2:]))
    assert initial_weights(ferplus, other) is None  # Another network: refused (a one-line error in train_cnn.py).
