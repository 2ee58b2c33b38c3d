"""FER+: the row-by-row join, each of FER+'s label rules, each training
mode's targets, and an 8-class model through every script."""
import json
import os

import numpy as np
import pytest
from conftest import (FERPLUS_HEADER, assert_one_line_error, csv_text, ferplus_votes_row, learnable_faces, run_main,
                      run_script, write_csv, write_ferplus_pair)

from ferkit.data import ferplus
from ferkit.data.fer2013 import FERPLUS_CLASSES, load_csv

# FER+'s columns, for writing votes by name.
N, H, SU, SA, A, D, F, C, UNKNOWN, NF = range(10)


def votes(**counts):
    """A (1, 10) vote row in FER+'s column order, from column names."""
    names = FERPLUS_HEADER.lower().split(",")[2:]
    row = np.zeros((1, 10), np.float32)
    for name, count in counts.items():
        row[0, names.index(name)] = count
    return row


def test_columns_map_to_this_projects_classes():
    names = FERPLUS_HEADER.lower().split(",")[2:10]
    mapped = [FERPLUS_CLASSES[k].lower() for k in ferplus.COLUMN_CLASS[:8]]
    assert mapped == ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    assert [n[:3] for n in names] == ["neu", "hap", "sur", "sad", "ang", "dis", "fea", "con"]


@pytest.mark.parametrize("counts, label", [
    (dict(happiness=6, neutral=4), FERPLUS_CLASSES.index("Happy")),
    (dict(contempt=7, neutral=3), FERPLUS_CLASSES.index("Contempt")),
    (dict(happiness=5, neutral=5), -1),                        # a tie: no class holds more than half
    (dict(anger=5, fear=1, disgust=1, sadness=1, neutral=2), FERPLUS_CLASSES.index("Angry")),  # 5 of 7 once 1s go
    (dict(anger=4, fear=3, neutral=3), -1),                    # 4 of 10 is no majority
    (dict(unknown=6, happiness=4), -1),                        # the top vote is unknown
    (dict(nf=10), -1),
    (dict(), -1),
])
def test_majority_rule(counts, label):
    assert ferplus.majority_labels(votes(**{k if k != "nf" else "nf": v for k, v in counts.items()}))[0] == label


def test_votes_of_one_are_noise():
    # Raw, fear (4) would not be a majority of 10; with the six single votes zeroed it is 4 of 4.
    row = votes(fear=4, neutral=1, happiness=1, surprise=1, sadness=1, anger=1, disgust=1)
    assert ferplus.majority_labels(row)[0] == FERPLUS_CLASSES.index("Fear")
    target = ferplus.distribution_targets(row)[0]
    assert target[FERPLUS_CLASSES.index("Fear")] == 1 and target.sum() == pytest.approx(1)


def test_distribution_takes_top_classes_until_they_hold_75_percent():
    # Neutral and Sad hold 8 of 10 votes, so Angry's 2 are left out.
    t = ferplus.distribution_targets(votes(neutral=5, sadness=3, anger=2))[0]
    expected = np.zeros(8)
    expected[FERPLUS_CLASSES.index("Neutral")] = 5 / 8
    expected[FERPLUS_CLASSES.index("Sad")] = 3 / 8
    np.testing.assert_allclose(t, expected, atol=1e-6)
    # Neutral and Sad tie (6 of 10), then Angry (8 of 10); the unknown tying Angry is left out.
    t = ferplus.distribution_targets(votes(neutral=3, sadness=3, anger=2, unknown=2))[0]
    np.testing.assert_allclose(t[[6, 4, 0]], [3 / 8, 3 / 8, 2 / 8], atol=1e-6)
    assert t.sum() == pytest.approx(1)
    # Two ties of two: four classes before 75%, dropped.
    assert ferplus.distribution_targets(votes(neutral=3, sadness=3, anger=2, fear=2))[0].sum() == 0


def test_distribution_drops_an_unknown_that_follows_emotions_and_rows_it_tops():
    # Happy (6) first; Neutral and unknown tie for second, and the unknown is left out.
    kept = ferplus.distribution_targets(votes(happiness=6, unknown=2, neutral=2))[0]
    assert kept[FERPLUS_CLASSES.index("Happy")] == pytest.approx(0.75)
    assert kept[FERPLUS_CLASSES.index("Neutral")] == pytest.approx(0.25)
    assert ferplus.distribution_targets(votes(unknown=5, happiness=3, neutral=2))[0].sum() == 0
    # Four classes tie at 2 (the 2 NF votes make ten): more than three, dropped.
    assert ferplus.distribution_targets(votes(happiness=2, neutral=2, sadness=2, anger=2, nf=2))[0].sum() == 0


def test_multitarget_takes_classes_with_30_percent():
    t = ferplus.multitarget_targets(votes(neutral=4, surprise=3, happiness=3))[0]
    assert set(np.flatnonzero(t)) == {FERPLUS_CLASSES.index(c) for c in ("Neutral", "Surprise", "Happy")}
    assert ferplus.multitarget_targets(votes(neutral=4, surprise=2, happiness=2, sadness=2))[0].sum() == 0


def test_training_targets_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="label mode"):
        ferplus.training_targets(votes(happiness=10), "soft")


def test_join_zeroes_unnamed_rows(tmp_path):
    faces_path, votes_path, labels, usage = write_ferplus_pair(tmp_path, n_per_class=3)
    faces = load_csv(faces_path)
    v = ferplus.load_votes(votes_path, faces, faces_path)
    assert v.shape == (len(labels), 10)
    assert v[-1].sum() == 0  # The unnamed row.
    majority = ferplus.majority_labels(v)
    assert majority[-1] == -1
    np.testing.assert_array_equal(majority[:-1], labels[:-1])  # 8 of 10 votes: FER2013's own label.


def test_join_errors_name_both_files_and_the_row(tmp_path):
    faces_path, votes_path, labels, usage = write_ferplus_pair(tmp_path, n_per_class=3)
    faces = load_csv(faces_path)
    lines = open(votes_path).read().splitlines()
    short = write_csv(tmp_path / "short.csv", "\n".join(lines[:-1]) + "\n")
    with pytest.raises(ferplus.DataError, match=rf"short.csv: has {len(labels) - 1} rows but .*fer2013.csv has {len(labels)}"):
        ferplus.load_votes(short, faces, faces_path)
    swapped = lines[:]
    swapped[4] = swapped[4].replace("Training", "PrivateTest") if "Training" in swapped[4] else \
        swapped[4].replace("PublicTest", "PrivateTest")
    moved = write_csv(tmp_path / "moved.csv", "\n".join(swapped) + "\n")
    with pytest.raises(ferplus.DataError, match=r"moved.csv, line 5: Usage PrivateTest but .*fer2013.csv says"):
        ferplus.load_votes(moved, faces, faces_path)
    no_usage = write_csv(tmp_path / "train.csv", csv_text("ntu_train", *learnable_faces(1)))
    with pytest.raises(ferplus.DataError, match="has no Usage column"):
        ferplus.load_votes(votes_path, load_csv(no_usage), no_usage)


@pytest.mark.parametrize("text, problem", [
    ("Usage,name\n", "line 1: expected FER.'s header 'Usage,Image name,neutral,"),
    (FERPLUS_HEADER + "\nTraining,a.png,4,0,0,0,0,0,0,0,x,0\n", "line 2: vote counts must be integers 0-10"),
    (FERPLUS_HEADER + "\nTraining,a.png,4,0\n", "line 2: expected 12 comma-separated fields, found 4"),
    (FERPLUS_HEADER + "\nTest,a.png,4,0,0,0,0,0,0,0,0,0\n", "line 2: usage 'Test' is not one of"),
    (FERPLUS_HEADER + "\n", "no data rows"),
])
def test_bad_vote_files(tmp_path, text, problem):
    path = write_csv(tmp_path / "fer2013new.csv", text)
    with pytest.raises(ferplus.DataError, match=problem):
        ferplus.read_votes(path)


def test_probability_mode_draws_one_hot_labels_from_the_votes():
    from ferkit.data.fer2013 import Dataset
    from ferkit.train.pipeline import make_dataset

    images, _ = learnable_faces(40, seed=3)
    targets = np.zeros((len(images), 8), np.float32)
    targets[:, 3], targets[:, 6] = 0.7, 0.3  # Happy 70%, Neutral 30%.
    data = Dataset(images, np.full(len(images), 3, np.int8), np.arange(len(images)), None, targets)
    drawn = np.concatenate([y.numpy() for _, y in make_dataset(data, 64, num_classes=8, sample_targets=True)])
    assert drawn.shape == (len(images), 8)
    assert set(np.unique(drawn)) == {0.0, 1.0} and (drawn.sum(axis=1) == 1).all()
    assert set(np.flatnonzero(drawn.sum(axis=0))) == {3, 6}
    assert 0.6 < drawn[:, 3].mean() < 0.8  # 280 draws of a 0.7 coin.
    soft = np.concatenate([y.numpy() for _, y in make_dataset(data, 64, num_classes=8)])
    np.testing.assert_allclose(soft, targets)  # crossentropy: the distribution itself


def test_multitarget_loss_is_that_of_the_best_allowed_class():
    import keras

    from ferkit.train.optim import make_loss
    from ferkit.train.recipes import PRESETS

    loss = make_loss(PRESETS["fast"], "multitarget")
    y_true = np.array([[0.5, 0.5, 0, 0, 0, 0, 0, 0]], np.float32)
    y_pred = np.array([[0.1, 0.3, 0.6, 0, 0, 0, 0, 0]], np.float32)
    value = float(keras.ops.mean(loss(y_true, y_pred)))
    assert value == pytest.approx(-np.log(0.3), rel=1e-5)


@pytest.fixture(scope="module")
def ferplus_run(tmp_path_factory):
    """An 8-class CNN, a quarter as wide as the release (what is tested here is the FER+ path, not the
    architecture), trained a few epochs on a learnable FER+ pair through train_cnn.py: batches of 16,
    on 223 faces 70 steps, enough for validation to pass 0.9 by epoch 4 in float32."""
    folder = tmp_path_factory.mktemp("ferplus")
    faces, votes_path, labels, usage = write_ferplus_pair(folder, n_per_class=40)
    out = str(folder / "cnn.keras")
    result = run_main("train_cnn.py", "--train", faces, "--ferplus", votes_path, "--label-mode", "crossentropy",
                      "--preset", "fast", "--epochs", "5", "--batch-size", "16", "--width", "0.25", "--out", out,
                      "--curves", "")
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(folder=folder, faces=faces, votes=votes_path, model=out, stdout=result.stdout)


def test_ferplus_training_learns_and_reports_eight_classes(ferplus_run):
    import csv

    assert "labels: FER+ crossentropy (8 classes)" in ferplus_run["stdout"]
    # 280 faces, one in five PublicTest, less the unnamed one: 223 train, 56 validate.
    assert "223 training and 56 validation faces" in ferplus_run["stdout"]
    with open(os.path.splitext(ferplus_run["model"])[0] + ".log.csv") as f:
        best = max(float(r["val_accuracy"]) for r in csv.DictReader(f))
    assert best > 0.3  # Chance is 1/7 on these faces.


def test_a_saved_ferplus_model_names_its_classes_in_a_fresh_process(ferplus_run):
    code = ("import sys; from ferkit.nets import models; m = models.load_model(sys.argv[1]); "
            "print(m.output_shape[-1], ','.join(m.class_names))")
    result = run_script("-c", code, ferplus_run["model"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "8 " + ",".join(FERPLUS_CLASSES)


@pytest.mark.parametrize("mode", ["majority", "probability", "multitarget"])
def test_every_label_mode_gives_its_targets_and_trains_a_step(tmp_path, mode):
    """In process (the command-line path is ferplus_run's): each mode's split,
    its batches' targets, and one finite training step of the DNN on them."""
    from ferkit.data import fer2013
    from ferkit.train import training
    from ferkit.train.optim import compile_model
    from ferkit.train.pipeline import make_dataset
    from ferkit.train.recipes import PRESETS

    faces, votes_path, _, _ = write_ferplus_pair(tmp_path, n_per_class=6)
    train_set, val_set, _ = training.ferplus_split(fer2013.load_csv(faces, cache=False), faces, votes_path, mode)
    assert len(val_set) == 9 and val_set.targets is None  # Validation: majority labels, always.
    x, y = next(iter(make_dataset(train_set, 16, shuffle=True, num_classes=8, sample_targets=mode == "probability")))
    y = y.numpy()
    assert x.shape == (16, 48, 48, 1) and y.shape == (16, 8)
    if mode in ("majority", "probability"):
        assert set(np.unique(y)) <= {0.0, 1.0} and np.allclose(y.sum(axis=1), 1)  # One class per face.
    else:  # Multi-hot: every class with 30% of the votes (here 8 and 2 votes, so one).
        assert set(np.unique(y)) <= {0.0, 1.0} and (y.sum(axis=1) >= 1).all()
    model = compile_model("dnn", PRESETS["dnn"], 1, num_classes=8, label_mode=mode)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])


def test_the_full_files_privatetest_is_held_out_and_scored_once(tmp_path):
    faces, votes_path, _, usage = write_ferplus_pair(tmp_path, n_per_class=10, private=True)
    out = str(tmp_path / "m.keras")
    result = run_main("train_cnn.py", "--train", faces, "--ferplus", votes_path, "--epochs", "1",
                        "--batch-size", "16", "--out", out, "--curves", "", "--score-test")
    assert result.returncode == 0, result.stderr[-3000:]
    # 70 rows: 14 PublicTest, 14 PrivateTest, 42 Training less the unnamed last row.
    assert (usage == 2).sum() == 14
    assert "41 training and 14 validation faces" in result.stdout and "14 PrivateTest faces held out" in result.stdout
    test_line = [line for line in result.stdout.splitlines() if line.startswith("test: PrivateTest, 14 faces")]
    assert len(test_line) == 1 and "FER+ majority labels: accuracy" in test_line[0]
    result = run_main("confusion.py", "--model", out, "--data", faces, "--ferplus", votes_path, "--split", "test",
                        "--out", str(tmp_path / "test.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "test.txt").read_text()
    assert "PrivateTest, FER+ majority labels" in table and "14 faces" in table
    # The same number both ways: one model, the same faces.
    assert test_line[0].split("accuracy ")[1][:6] == table.split("accuracy ")[1][:6]


def test_split_test_without_privatetest_rows_is_one_line(tmp_path, tiny_model):
    faces, votes_path, _, _ = write_ferplus_pair(tmp_path, n_per_class=3)
    result = run_main("confusion.py", "--model", tiny_model, "--data", faces, "--ferplus", votes_path,
                        "--split", "test", "--out", str(tmp_path / "c.png"))
    assert_one_line_error(result, "fer2013.csv", "no PrivateTest rows")
    assert not (tmp_path / "c.png").exists()


def test_a_mismatched_pair_is_one_line(tmp_path):
    faces, votes_path, _, _ = write_ferplus_pair(tmp_path, n_per_class=3)
    lines = open(votes_path).read().splitlines()
    short = write_csv(tmp_path / "short.csv", "\n".join(lines[:-2]) + "\n")
    result = run_main("train_cnn.py", "--train", faces, "--ferplus", short, "--epochs", "1",
                        "--out", str(tmp_path / "m.keras"))
    assert_one_line_error(result, "short.csv", "fer2013.csv", "row by row")


def test_confusion_with_ferplus_labels(ferplus_run, tiny_model, tmp_path):
    out = tmp_path / "ferplus.png"
    result = run_main("confusion.py", "--model", ferplus_run["model"], "--data", ferplus_run["faces"],
                        "--ferplus", ferplus_run["votes"], "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "ferplus.txt").read_text()
    assert "PublicTest, FER+ majority labels" in table and "56 faces" in table
    assert all(name in table for name in FERPLUS_CLASSES)
    # A FER2013 model (7 classes) against the same labels: no contempt to leave out here, 7 rows.
    result = run_main("confusion.py", "--model", tiny_model, "--data", ferplus_run["faces"],
                        "--ferplus", ferplus_run["votes"], "--out", str(tmp_path / "fer2013.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Contempt" not in (tmp_path / "fer2013.txt").read_text()


def test_confusion_leaves_out_contempt_for_a_fer2013_model(tmp_path, tiny_model):
    images, labels = learnable_faces(3, seed=4)
    usage = np.ones(len(labels), int)
    faces = write_csv(tmp_path / "fer2013.csv", csv_text("fer2013", images, labels, usage=usage))
    rows = [FERPLUS_HEADER] + [ferplus_votes_row("PublicTest", f"f{i}.png", {"contempt": 9} if i < 2 else {"happiness": 9})
                               for i in range(len(labels))]
    votes_path = write_csv(tmp_path / "fer2013new.csv", "\n".join(rows) + "\n")
    result = run_main("confusion.py", "--model", tiny_model, "--data", faces, "--ferplus", votes_path,
                        "--out", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "left out 2 faces whose label (Contempt)" in result.stdout
    assert f"{len(labels) - 2} faces" in (tmp_path / "c.txt").read_text()


def test_predict_with_an_eight_class_model_writes_fer2013_labels(ferplus_run, tiny_data, tmp_path):
    out = tmp_path / "submission.csv"
    result = run_main("predict.py", "--model", ferplus_run["model"], "--test", tiny_data["test"], "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the submission takes the best of FER2013's 7" in result.stdout
    labels = [int(line.split(",")[1]) for line in out.read_text().splitlines()[1:]]
    assert len(labels) == tiny_data["n_test"] and all(0 <= l <= 6 for l in labels)


def test_an_ensemble_of_seven_and_eight_classes_is_one_line(ferplus_run, tiny_model, tiny_data, tmp_path):
    result = run_main("predict.py", "--model", ferplus_run["model"], "--model", tiny_model,
                        "--test", tiny_data["test"], "--out", str(tmp_path / "s.csv"))
    assert_one_line_error(result, "must predict the same classes")


def test_emotions_and_figures_use_the_models_class_names(ferplus_run, tmp_path):
    import matplotlib.cbook

    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    result = run_main("emotions.py", photo, "--model", ferplus_run["model"], "--json", str(tmp_path / "e.json"),
                        "--csv", str(tmp_path / "e.csv"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((tmp_path / "e.json").read_text())
    assert list(records[0]["probabilities"]) == list(FERPLUS_CLASSES)
    assert records[0]["emotion"] in FERPLUS_CLASSES
    assert (tmp_path / "e.csv").read_text().splitlines()[0].endswith(",Neutral,Contempt")
    for script in (["saliency.py", "--per-class", "1"], ["visualize_filters.py", "--steps", "2"]):
        result = run_main(*script, "--model", ferplus_run["model"], "--data", ferplus_run["faces"],
                          "--out-dir", str(tmp_path))
        assert result.returncode == 0, (script, result.stderr[-3000:])
