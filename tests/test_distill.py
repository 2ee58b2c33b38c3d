"""distill.py and --teacher: the targets the teachers give, the loss the
student is fitted with (checked by hand), and a distilled run."""
import numpy as np
import pytest
from conftest import assert_one_line_error, run_main

from ferkit.train.distill import blend, distillation_loss


def test_blend_mixes_teachers_and_labels_and_keeps_rows_summing_to_one():
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(blend(teacher, labels, 1.0), teacher, rtol=1e-6)
    np.testing.assert_allclose(blend(teacher, labels, 0.5), [[0.85, 0.1, 0.05], [0.05, 0.55, 0.4]], rtol=1e-6)
    with pytest.raises(ValueError, match="the teachers give 3 classes, the data has 2"):
        blend(teacher, labels[:, :2], 0.5)


def test_the_students_loss_is_cross_entropy_on_the_targets_by_hand():
    import keras

    targets = np.array([[0.6, 0.3, 0.1], [0.0, 0.2, 0.8]], np.float32)
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.3, 0.6]], np.float32)
    by_hand = [-(0.6 * np.log(0.5) + 0.3 * np.log(0.25) + 0.1 * np.log(0.25)),
               -(0.2 * np.log(0.3) + 0.8 * np.log(0.6))]
    np.testing.assert_allclose(distillation_loss(targets, p), by_hand, rtol=1e-6)
    # What training computes: Keras' categorical cross-entropy on the soft targets, the batch's mean.
    keras_loss = float(keras.losses.CategoricalCrossentropy()(targets, p))
    assert keras_loss == pytest.approx(np.mean(by_hand), rel=1e-5)
    # Cross-entropy = KL(t || p) + H(t): the same minimiser as the divergence from the teachers.
    t = targets[0]
    kl, entropy = np.sum(t * np.log(t / p[0])), -np.sum(t * np.log(t))
    assert distillation_loss(targets[:1], p[:1])[0] == pytest.approx(kl + entropy, rel=1e-6)


def test_a_run_taught_by_a_saved_model(tiny_data, tiny_model, tmp_path):
    out = tmp_path / "student.keras"
    result = run_main("train_dnn.py", "--train", tiny_data["train"], "--epochs", "1", "--batch-size", "32",
                      "--width", "0.25", "--teacher", tiny_model, "--teacher-weight", "0.7", "--out", out,
                      "--curves", "")
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("teachers:"))
    assert tiny_model in line and "weight 0.7" in line and "training faces" in line
    assert out.is_file()
    assert_one_line_error(run_main("train_dnn.py", "--train", tiny_data["train"], "--teacher", tiny_model,
                                   "--teacher-weight", "0", "--out", tmp_path / "x.keras"), "--teacher-weight 0")
