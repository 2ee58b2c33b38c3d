"""bench.py: every mode runs to its end on tiny data and prints its figures
(the figures themselves are for a real machine and real data, not a test)."""
import numpy as np
import pytest
from conftest import csv_text, run_script, write_csv


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory):
    """A training CSV of 42 copies of one real face (so the detectors find
    it), shifted a pixel or two, and a test CSV with ids."""
    import matplotlib.cbook

    from ferkit.detectors import HaarDetector
    from ferkit.faces import CROP_SCALE, crop_face
    from ferkit.images import read_image, to_gray

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


@pytest.mark.parametrize("mode, flags, expect", [
    ("csv", ["--repeat", "1"], "ratio load_csv / pandas"),
    ("throughput", ["--images", "256", "--epochs", "2", "--batch-size", "64"], "images/s"),
    ("breakdown", ["--images", "256", "--epochs", "2"], "over the bare step"),
    ("epochs", ["--epochs", "1"], "seconds per epoch"),
    ("precision", ["--limit", "40", "--epochs", "2"], "images/s"),
    ("crop", ["--faces", "5"], "crop"),
    ("detectors", ["--faces", "4", "--detector-list", "blazeface,haar"], "blazeface"),
    ("rotation", ["--faces", "6", "--angles", "0,30"], "+30 degrees: found"),
    ("predict", [], "end to end"),
    ("memory", [], "peak RSS"),
    ("emotions", ["--photos", "2", "--frames", "6"], "frames/s after start-up"),
])
def test_every_mode_prints_its_figures(real_faces, tiny_model, tmp_path, mode, flags, expect):
    from ferkit import cli

    train, test = real_faces
    onnx = cli.released_model("fer2013_cnn", prefer_onnx=True)
    result = run_script("bench.py", mode, "--train", train, "--test", test, "--model", tiny_model, "--onnx", onnx, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout, result.stdout[-2000:]
