"""predict.py, confusion.py, visualize_filters.py and saliency.py end to end
on a CNN trained for one epoch on generated data, and their bad-input errors."""
import csv

import numpy as np
import pytest
from conftest import assert_one_line_error, csv_text, random_faces, run_main, write_csv


def read_submission(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def assert_png(path, min_width=300):
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_width and image.size[1] >= 150
        grey = np.asarray(image.convert("L"))
        assert len(np.unique(grey)) > 20  # Not a blank canvas,
        background = np.bincount(grey.ravel()).argmax()
        # nor titles and empty axes: a figure drawn from data covers a good part of it
        # (matplotlib's empty 800 px axes with a title and labels cover under 3%).
        assert np.mean(grey != background) > 0.05, np.mean(grey != background)


@pytest.mark.parametrize("extra", [[], ["--tta", "none"], ["--tta", "second-model"], ["--precision", "float32"]])
def test_predict_writes_a_submission(tmp_path, tiny_data, tiny_model, extra):
    out = tmp_path / "submission.csv"
    models = ["--model", tiny_model] + (["--model", tiny_model] if "second-model" in extra else [])
    flags = [f for f in extra if f != "second-model"]
    result = run_main("predict.py", *models, *flags, "--test", tiny_data["test"], "--out", str(out),
                        "--labels", tiny_data["labels"])
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_submission(out)
    assert header == ["id", "label"]
    assert [int(r[0]) for r in rows] == list(range(tiny_data["n_test"]))
    assert all(0 <= int(r[1]) <= 6 for r in rows)
    assert "accuracy" in result.stdout and "Neutral" in result.stdout
    import re

    scores = re.search(r"accuracy ([0-9.]+) on [0-9]+ faces, mean class recall ([0-9.]+), ECE ([0-9.]+)", result.stdout)
    assert scores and all(0 <= float(v) <= 1 for v in scores.groups()), result.stdout[-1000:]
    # The accuracy printed is the submission's against the key, to the digits printed.
    with open(tiny_data["labels"]) as f:
        key = {int(r["id"]): int(r["label"]) for r in csv.DictReader(f)}
    agreed = np.mean([key[int(i)] == int(label) for i, label in rows])
    assert abs(float(scores.group(1)) - agreed) < 5e-5, (scores.group(1), agreed)
    assert "precision: float32" in result.stdout if "float32" in extra else "precision: " in result.stdout
    assert ("tta=off" if "none" in extra else "tta=flip") in result.stdout


def test_bfloat16_and_float32_predictions_agree(tiny_model):
    from ferkit.infer.inference import predict_proba
    from ferkit.nets.models import load_model

    images, _ = random_faces(32, seed=5)
    reference = predict_proba([load_model(tiny_model, "float32")], images)
    fast = predict_proba([load_model(tiny_model, "bfloat16")], images)
    np.testing.assert_allclose(fast, reference, atol=0.03)
    assert np.mean(fast.argmax(1) == reference.argmax(1)) >= 0.9


def test_predict_keeps_ids_from_the_file(tmp_path, tiny_model):
    images, _ = random_faces(4, seed=9)
    ids = np.array([17, 3, 99, 5])
    test = write_csv(tmp_path / "t.csv", csv_text("ntu_test", images, ids=ids))
    out = tmp_path / "s.csv"
    result = run_main("predict.py", "--model", tiny_model, "--test", test, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r[0] for r in read_submission(out)[1]] == ["17", "3", "99", "5"]


def test_tta_and_ensemble_average_probabilities(tiny_model):
    from ferkit.infer.inference import predict_proba
    from ferkit.nets.models import load_model

    model = load_model(tiny_model)
    images, _ = random_faces(5, seed=4)
    plain = predict_proba([model], images)
    mirrored = predict_proba([model], images[:, :, ::-1])
    assert not np.allclose(plain, mirrored, atol=1e-4)  # No TTA by default: a face and its mirror differ.
    np.testing.assert_allclose(predict_proba([model], images, tta="flip"), (plain + mirrored) / 2, atol=1e-5)
    np.testing.assert_allclose(predict_proba([model, model], images), plain, atol=1e-6)
    with pytest.raises(ValueError, match="tta must be one of"):
        predict_proba([model], images, tta=True)


def test_tencrop_averages_ten_views_each_face_moved_three_pixels():
    from ferkit.infer.inference import SHIFT, tta_views

    images, _ = random_faces(2, seed=5)
    views = list(tta_views(images, "tencrop"))
    assert len(views) == 10 and all(v.shape == images.shape for v in views)
    np.testing.assert_array_equal(views[1], images[:, :, ::-1])
    # The third view is the face moved SHIFT pixels down: row r shows row r - SHIFT, the top rows repeat the edge.
    np.testing.assert_array_equal(views[2][:, SHIFT:], images[:, :-SHIFT])
    np.testing.assert_array_equal(views[2][:, :SHIFT], np.repeat(images[:, :1], SHIFT, axis=1))
    assert len({v.tobytes() for v in views}) == 10  # Ten different pictures, not one repeated.
    with pytest.raises(ValueError, match="tta must be one of"):
        list(tta_views(images, "shifts"))  # The old name belongs to the shift benchmark now.


def test_predict_errors(tmp_path, tiny_data, tiny_model):
    out = tmp_path / "s.csv"
    missing = run_main("predict.py", "--model", str(tmp_path / "none.keras"), "--test", tiny_data["test"], "--out", str(out))
    assert_one_line_error(missing, "none.keras", "no such model file")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not a real archive")
    broken = run_main("predict.py", "--model", str(corrupt), "--test", tiny_data["test"], "--out", str(out))
    assert_one_line_error(broken, "corrupt.keras", "not a readable Keras model")
    wrong = write_csv(tmp_path / "wrong.csv", "name,value\na,1\n")
    layout = run_main("predict.py", "--model", tiny_model, "--test", wrong, "--out", str(out))
    assert_one_line_error(layout, "wrong.csv", "line 1", "unknown header")
    assert not out.exists()


def test_confusion_matrix_figure_and_table(tmp_path, tiny_data, tiny_model):
    out = tmp_path / "cm.png"
    result = run_main("confusion.py", "--model", tiny_model, "--data", tiny_data["train"], "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_png(out, min_width=800)
    table = (tmp_path / "cm.txt").read_text()
    assert "precision" in table and "Disgust" in table and "validation split" in table


def test_filter_figures(tmp_path, tiny_data, tiny_model):
    result = run_main("visualize_filters.py", "--model", tiny_model, "--data", tiny_data["train"],
                        "--steps", "5", "--filters", "16", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_png(tmp_path / "filter_activations.png", min_width=800)
    assert_png(tmp_path / "filter_patterns.png")


def test_filter_errors_name_the_valid_choices(tmp_path, tiny_data, tiny_model):
    bad_layer = run_main("visualize_filters.py", "--model", tiny_model, "--data", tiny_data["train"],
                           "--layer", "conv9", "--out-dir", str(tmp_path))
    assert_one_line_error(bad_layer, "'conv9'", "conv1_1", "conv3_2")
    bad_index = run_main("visualize_filters.py", "--model", tiny_model, "--data", tiny_data["train"],
                           "--index", "5000", "--out-dir", str(tmp_path))
    assert_one_line_error(bad_index, "--index 5000 is out of range")
    assert not list(tmp_path.glob("*.png"))


def test_saliency_and_gradcam_maps(tiny_model):
    from saliency import explain

    from ferkit.nets.models import load_model

    from ferkit.infer.inference import predict_proba

    images, _ = random_faces(3, seed=11)
    model = load_model(tiny_model)
    # The predicted class, as saliency.py explains it: Grad-CAM keeps only the
    # positive evidence, which a class the model rejects may not have at all.
    predicted = predict_proba([model], images).argmax(axis=1)
    saliency_maps, cams = explain(model, images, predicted)
    for maps in (saliency_maps, cams):
        assert maps.shape == (3, 48, 48)
        assert np.all(np.isfinite(maps)) and np.abs(maps).sum(axis=(1, 2)).min() > 0


def test_saliency_figure(tmp_path, tiny_data, tiny_model):
    result = run_main("saliency.py", "--model", tiny_model, "--data", tiny_data["train"], "--per-class", "1",
                        "--smoothgrad", "--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_png(tmp_path / "saliency.png")


def write_log(path, val_accuracies):
    with open(path, "w") as f:
        f.write("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,saved\n")
        for epoch, val in enumerate(val_accuracies, start=1):
            f.write(f"{epoch},1.0,0.5,1.0,{val},0.001,60.0,1\n")


def test_compare_runs_prints_best_and_last_epoch_and_draws_the_figure(tmp_path):
    write_log(tmp_path / "a.csv", [0.40, 0.62, 0.58])
    write_log(tmp_path / "b.csv", [0.45, 0.50, 0.55, 0.60])
    out = tmp_path / "runs.png"
    result = run_main("compare_runs.py", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                        "--labels", "bf16", "fp32", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:3]}
    assert rows["bf16"][1:5] == ["3", "0.6200", "(", "2)"] and rows["bf16"][5] == "0.5800"
    assert rows["fp32"][1:5] == ["4", "0.6000", "(", "4)"] and rows["fp32"][5] == "0.6000"
    assert rows["fp32"][6] == "4.0"  # Minutes: four epochs of 60 s.
    assert out.stat().st_size > 10_000


def test_compare_runs_errors(tmp_path):
    write_log(tmp_path / "a.csv", [0.4, 0.5])
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,accuracy,val_accuracy,seconds\n1,0.5,0.4,60\n2,0.5,oops,60\n")
    assert_one_line_error(run_main("compare_runs.py", str(bad)), str(bad), "line 3", "numbers")
    assert_one_line_error(run_main("compare_runs.py", str(tmp_path / "none.csv")), "none.csv")
    assert_one_line_error(run_main("compare_runs.py", str(tmp_path / "a.csv"), "--labels", "x", "y"),
                          "--labels", "2 names for 1 logs")
    out = tmp_path / "never.png"
    result = run_main("compare_runs.py", str(tmp_path / "a.csv"), str(bad), "--out", str(out))
    assert_one_line_error(result, str(bad))
    assert not out.exists()


def test_fer2013_csv_privatetest_is_held_out_and_scored_only_when_asked(tmp_path, tiny_data):
    from conftest import learnable_faces

    images, labels = learnable_faces(6, seed=5)
    usage = np.arange(len(labels)) % 3  # Training, PublicTest, PrivateTest in turn: 14 rows each.
    faces = write_csv(tmp_path / "fer2013.csv", csv_text("fer2013", images, labels, usage=usage))
    out = str(tmp_path / "m.keras")
    result = run_main("train_cnn.py", "--train", faces, "--epochs", "1", "--batch-size", "16", "--out", out,
                        "--curves", "")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "14 training and 14 validation faces" in result.stdout and "14 PrivateTest faces held out" in result.stdout
    # Without --score-test the held-out part is not scored (test_ferplus.py runs it with the flag).
    assert "test: PrivateTest" not in result.stdout and "scored once" not in result.stdout
    result = run_main("confusion.py", "--model", out, "--data", faces, "--split", "test", "--out", str(tmp_path / "t.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PrivateTest" in (tmp_path / "t.txt").read_text()
    # A file without a Usage column has no test part to score.
    result = run_main("confusion.py", "--model", out, "--data", tiny_data["train"], "--split", "test",
                        "--out", str(tmp_path / "u.png"))
    assert_one_line_error(result, "train.csv", "has no Usage column")
