"""bench.py: every mode runs to its end on tiny data and prints its figures
(the figures themselves are for a real machine and real data, not a test)."""
import numpy as np
import pytest
from conftest import csv_text, learnable_faces, run_main, write_csv


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory):
    """A training CSV of 42 copies of one real face (so the detectors find
    it), shifted a pixel or two, and a test CSV with ids."""
    import matplotlib.cbook

    from ferkit.vision.detectors import HaarDetector
    from ferkit.vision.crops import CROP_SCALE, crop_face
    from ferkit.vision.images import read_image, to_gray

    rgb = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    gray = to_gray(rgb)
    box = HaarDetector()(rgb)[0].box
    faces = [crop_face(gray, (box[0] + dx, box[1] + dy, box[2], box[3]), CROP_SCALE["haar"])
             for dx in (-2, 0, 2) for dy in (-2, 0, 2)]
    images = np.stack([faces[i % len(faces)] for i in range(42)])
    labels = np.arange(42) % 7
    folder = tmp_path_factory.mktemp("bench")
    train = write_csv(folder / "train.csv", csv_text("ntu_train", images, labels))
    test = write_csv(folder / "test.csv", csv_text("ntu_test", images[:20], ids=np.arange(20)))
    return train, test


NUMBER = r"[0-9]+(?:\.[0-9]+)?"
# A rate or a time: a number above zero (a benchmark that timed nothing prints 0.0).
POSITIVE = r"(?:[1-9][0-9]*(?:\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)"
# In a mode's flags: the released ONNX model, where a mode times whole script
# runs and the Keras model would spend most of them starting TensorFlow.
ONNX = "<onnx>"


@pytest.mark.parametrize("mode, flags, figures", [
    ("csv", ["--repeat", "1"], [rf"ratio load_csv / pandas\s+{POSITIVE}", rf"load_csv, cached\s+{NUMBER} s"]),
    ("throughput", ["--images", "64", "--epochs", "2", "--batch-size", "32", "--arch", "dnn"],
     [rf"bare model.fit, float32 arrays\s+{POSITIVE} images/s", rf"training FLOP rate\s+{POSITIVE} GFLOP/s"]),
    ("breakdown", ["--images", "64", "--epochs", "2", "--batch-size", "32"], [rf"{POSITIVE} training images/s", r"over the bare step"]),
    ("epochs", ["--epochs", "1"], [rf"seconds per epoch: {POSITIVE}"]),
    ("precision", ["--limit", "40", "--epochs", "1"], [rf"ratio bfloat16 / float32\s+{POSITIVE}",
                                                      rf"--precision float32: epoch 1 {POSITIVE} s, {POSITIVE} images/s",
                                                      rf"--precision bfloat16: epoch 1 {POSITIVE} s, {POSITIVE} images/s"]),
    ("crop", ["--faces", "5"], [r"crop: haar on 5 FER2013 faces .*: found [1-5]\b", rf"median {NUMBER}"]),
    ("detectors", ["--faces", "4", "--detector-list", "blazeface,haar"],
     [rf"blazeface +found [1-4]/4, false positives [0-9]+, {POSITIVE} ms per 1280x720 image",
      rf"haar +found [1-4]/4, false positives [0-9]+, {POSITIVE} ms"]),
    ("rotation", ["--faces", "6", "--angles", "0,30"], [r"\+0 degrees: found [1-6]/6", r"\+30 degrees: found [1-6]/6"]),
    ("predict", ["--model", ONNX], [rf"predict.py .*: {POSITIVE} s end to end"]),
    ("memory", [], [r"train_cnn.py, 1 epoch on .*: peak RSS [1-9][0-9]* MiB .*exit 0",
                    r"predict.py on .*: peak RSS [1-9][0-9]* MiB .*exit 0"]),
    ("emotions", ["--photos", "2", "--frames", "6", "--model", ONNX], [rf"-> {POSITIVE} frames/s after start-up", rf"one photo {POSITIVE} s"]),
])
def test_every_mode_prints_its_figures(real_faces, tiny_model, tmp_path, mode, flags, figures):
    import re

    from ferkit.programs import cli

    train, test = real_faces
    onnx = cli.released_model("fer2013_cnn", prefer_onnx=True)
    import bench

    flags = [onnx if flag == ONNX else flag for flag in flags]
    common = {"train": train, "test": test, "model": tiny_model, "onnx": onnx}
    taken = [a for name, value in common.items() if name in bench.MODES[mode][2] and f"--{name}" not in flags
             for a in (f"--{name}", value)]
    result = run_main("bench.py", mode, *taken, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    for figure in figures:
        assert re.search(figure, result.stdout), (figure, result.stdout[-2000:])


def test_memory_fails_when_the_measured_run_fails(tmp_path):
    """A peak measured on a run that failed is no figure: bench.py says so and exits non-zero."""
    bad = write_csv(tmp_path / "bad.csv", "label,feature\n0,1 2 3\n")
    result = run_main("bench.py", "memory", "--train", bad, "--test", bad)
    assert result.returncode != 0 and "exited 2" in result.stderr, result.stderr[-2000:]


def test_closeups_finds_the_pictures_of_a_face_that_fill_them(real_faces):
    import re

    train, _ = real_faces
    result = run_main("bench.py", "closeups", "--train", train, "--faces", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [l for l in result.stdout.splitlines() if "with the close-up pass" in l]
    assert [l.split("with")[0].strip() for l in lines] == [
        "FER2013 faces at 48 px", "FER2013 faces at 96 px", "FER2013 faces at 192 px", "Grace Hopper cropped to her face"]
    for line in lines:  # Copies of one real face: the close-up pass finds every one; alone, not every.
        found, total = map(int, re.search(r"close-up pass: (\d+)/(\d+)", line).groups())
        alone = int(re.search(r"full range alone: (\d+)/", line).group(1))
        assert found == total and alone < total, line


def test_shifts_prints_a_line_per_shift_and_the_mean_per_model(tmp_path, tiny_model):
    import re

    from conftest import write_ferplus_pair
    from ferkit.data import shifts

    faces, votes, _, _ = write_ferplus_pair(str(tmp_path))
    result = run_main("bench.py", "shifts", "--train", faces, "--ferplus", votes, "--model", tiny_model,
                      "--model", tiny_model)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    means = re.findall(rf"^mean over shifts: accuracy ({NUMBER}), mean class recall ({NUMBER})$", out, re.M)
    assert len(means) == 2 and means[0] == means[1]  # One block per --model, in order.
    block = out.split("mean over shifts")[0]
    scored = {name: float(a) for name, a in re.findall(rf"^  (\w+) +accuracy ({NUMBER})", block, re.M)}
    assert list(scored) == ["clean", "subtle", *shifts.SHIFTS]
    mean = np.mean([scored[name] for name in shifts.SHIFTS])
    assert float(means[0][0]) == pytest.approx(mean, abs=1e-4)  # The mean of the shifts alone.
    result = run_main("bench.py", "shifts", "--train", faces, "--model", tiny_model)
    assert result.returncode == 2 and "shifts needs --ferplus" in result.stderr


def test_jitter_counts_changes_and_the_lag_with_and_without_smoothing(tmp_path):
    import re

    from ferkit.programs import cli

    # Two real faces (Grace Hopper's, and her mirror image darkened), 70 rows: 7 of them validate.
    import matplotlib.cbook

    from ferkit.vision.crops import face_crop
    from ferkit.vision.detectors import BlazeFaceDetector
    from ferkit.vision.images import read_image, to_gray

    rgb = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    face = face_crop(to_gray(rgb), BlazeFaceDetector()(rgb)[0], "blazeface")
    images = np.stack([face if i % 2 else (face[:, ::-1] * 0.7).astype(np.uint8) for i in range(70)])
    train = write_csv(tmp_path / "train.csv", csv_text("ntu_train", images, np.arange(70) % 7))
    onnx = cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True)
    result = run_main("bench.py", "jitter", "--train", train, "--faces", "2", "--frames", "30", "--onnx", onnx)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(rf"^  (raw|smoothed 0.3 s) +top-class changes a second: mean ({NUMBER}), .*frames with a face "
                      rf"(\d+)/60; reading = label ({NUMBER})$", result.stdout, re.M)
    # Each way of reading: the detector on every frame or every 5th, flip TTA or one view.
    assert [r[0] for r in rows] == ["raw", "smoothed 0.3 s"] * 4, result.stdout
    assert all(int(r[2]) >= 50 for r in rows)  # A real face, enlarged: found in (nearly) every frame.
    assert all(float(smoothed[1]) <= float(raw[1]) for raw, smoothed in zip(rows[::2], rows[1::2]))
    passes = re.findall(r"^detect every (\d) frame\(s\) \((\d+) full passes for 60 frames\), (flip TTA|one view)$",
                        result.stdout, re.M)
    assert [(k, view) for k, _, view in passes] == [("1", "flip TTA"), ("1", "one view"), ("5", "flip TTA"),
                                                    ("5", "one view")], result.stdout
    assert int(passes[0][1]) == 60 and int(passes[2][1]) < 30  # Followed between full passes.


def test_compare_prints_each_model_and_the_difference_with_its_interval(tmp_path, tiny_model):
    import re

    from conftest import write_ferplus_pair
    from ferkit.programs import cli

    faces, votes, _, _ = write_ferplus_pair(str(tmp_path))
    ferplus_model = cli.released_model("ferplus_cnn", prefer_onnx=True)
    result = run_main("bench.py", "compare", "--train", faces, "--ferplus", votes, "--model", ferplus_model,
                      "--model", ferplus_model, "--draws", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = re.findall(rf"^  ferplus_cnn.onnx: accuracy ({NUMBER}), mean class recall ({NUMBER})$",
                        result.stdout, re.M)
    assert len(scores) == 2 and scores[0] == scores[1]
    # Two paths joined by '+' are scored as one model, their mean: the same model twice reads as itself.
    pair = run_main("bench.py", "compare", "--train", faces, "--ferplus", votes, "--model", ferplus_model,
                    "--model", f"{ferplus_model}+{ferplus_model}", "--draws", "100")
    assert pair.returncode == 0, pair.stderr[-3000:]
    assert "ferplus_cnn.onnx+ferplus_cnn.onnx - ferplus_cnn.onnx: accuracy +0.0000 [+0.0000, +0.0000]" in pair.stdout
    # A model against itself: no difference in any draw.
    assert ("ferplus_cnn.onnx - ferplus_cnn.onnx: accuracy +0.0000 [+0.0000, +0.0000], ahead in 0.0% of draws; "
            "mean class recall +0.0000 [+0.0000, +0.0000], ahead in 0.0% of draws") in result.stdout
    # FER2013's seven classes cannot be compared on FER+'s eight; one model is nothing to compare.
    seven = run_main("bench.py", "compare", "--train", faces, "--ferplus", votes, "--model", ferplus_model,
                     "--model", tiny_model)
    assert seven.returncode == 2 and f"compare: {tiny_model} has 7 classes, not FER+'s 8" in seven.stderr
    alone = run_main("bench.py", "compare", "--train", faces, "--ferplus", votes, "--model", ferplus_model)
    assert alone.returncode == 2 and "two --model or more" in alone.stderr


def test_each_mode_has_its_own_flags_and_help():
    import bench

    shifts = bench.build_parser()._subparsers._group_actions[0].choices["shifts"].format_help()
    assert "--ferplus" in shifts and "--model" in shifts
    assert "--clients" not in shifts and "--angles" not in shifts and "--url" not in shifts
    wrong = run_main("bench.py", "shifts", "--clients", "4")
    assert wrong.returncode == 2 and "unrecognized arguments: --clients 4" in wrong.stderr
    assert set(bench.MODES) == {"csv", "throughput", "breakdown", "epochs", "precision", "memory", "predict", "crop",
                                "detectors", "rotation", "emotions", "runtimes", "parity", "serve", "shifts", "compare",
                                "closeups", "jitter", "page"}


def test_jitter_smoothing_removes_the_changes_of_a_face_that_flickers(tmp_path, monkeypatch):
    """A reader whose every frame flips between two readings, class 0 on average: raw, a change every frame
    (29 a second); smoothed, none. (Real faces read steadily even raw, which proves nothing of the smoothing.)"""
    import re

    from ferkit.infer import reader
    from ferkit.vision.records import Face

    class FlickeringReader:
        def __init__(self, *args, **kwargs):
            self.analyser = self  # The reader and its analyser in one.

        def detector(self, rgb, thorough=False):
            return []

        def faces(self, rgbs, thorough=False, detect=None, tta=None):
            # Class 0 on average (0.51), class 1 every other frame.
            p = [np.array([0.56, 0.44] + [0] * 6, np.float32), np.array([0.46, 0.54] + [0] * 6, np.float32)]
            return [[Face((100, 100, 200, 200), p[k % 2], None)] for k in range(len(rgbs))]

    monkeypatch.setattr(reader, "EmotionReader", FlickeringReader)
    images, labels = learnable_faces(n_per_class=10)
    train = write_csv(tmp_path / "train.csv", csv_text("ntu_train", images, labels))
    result = run_main("bench.py", "jitter", "--train", train, "--faces", "2", "--frames", "30")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(rf"^  (raw|smoothed 0.3 s) +top-class changes a second: mean ({NUMBER})", result.stdout, re.M)
    assert len(rows) == 8, result.stdout
    assert all(float(v) == (29.0 if kind == "raw" else 0.0) for kind, v in rows), result.stdout
