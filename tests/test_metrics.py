"""Scores beside accuracy: mean class recall, the calibration error and the
negative log-likelihood, in NumPy (metrics.py) and as Keras metrics
(keras_metrics.py), which must agree."""
import numpy as np
import pytest

from ferkit.infer import metrics


def test_mean_recall_weighs_each_class_equally():
    # 90 faces of class 0, 10 of class 1; a model that always says 0 scores
    # 0.9 accuracy but only half the classes' recall.
    labels = np.array([0] * 90 + [1] * 10)
    predicted = np.zeros(100, int)
    assert metrics.recall_per_class(labels, predicted, 2).tolist() == [1.0, 0.0]
    assert metrics.mean_class_recall(labels, predicted, 2) == pytest.approx(0.5)
    # A class without faces is left out of the mean, not counted as zero.
    assert np.isnan(metrics.recall_per_class(labels, predicted, 3)[2])
    assert metrics.mean_class_recall(labels, predicted, 3) == pytest.approx(0.5)


def test_confusion_matrix_rows_are_truth():
    m = metrics.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not():
    # 10 faces at confidence 0.8, 8 right: calibrated.
    p = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert metrics.expected_calibration_error(p, labels) == pytest.approx(0.0, abs=1e-12)
    # The same confidence, all wrong: the gap is the whole 0.8.
    assert metrics.expected_calibration_error(p, np.ones(10, int)) == pytest.approx(0.8)


def test_nll_of_labels_and_of_distributions():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert metrics.negative_log_likelihood(p, np.array([0, 0])) == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)
    votes = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert metrics.negative_log_likelihood(p, votes) == pytest.approx(-(np.log(0.5) + 0.5 * np.log(0.9) + 0.5 * np.log(0.1)) / 2)


def test_class_table_names_every_class_and_the_mean():
    table = metrics.class_table(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ("Angry", "Happy"))
    lines = table.splitlines()
    assert lines[1].split() == ["Angry", "1.000", "0.500", "0.667", "2"]
    assert lines[2].split() == ["Happy", "0.667", "1.000", "0.800", "2"]
    assert lines[-1].split() == ["mean", "recall", "0.750"]


def test_keras_metrics_agree_with_numpy():
    from ferkit.train.keras_metrics import CalibrationError, MeanClassRecall

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 8)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.choice(8, 500, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.03, 0.02])
    one_hot = np.eye(8, dtype=np.float32)[labels]
    recall, ece = MeanClassRecall(8), CalibrationError()
    for part in np.array_split(np.arange(500), 3):  # Accumulated over batches, like an epoch.
        recall.update_state(one_hot[part], p[part].astype(np.float32))
        ece.update_state(one_hot[part], p[part].astype(np.float32))
    assert float(recall.result()) == pytest.approx(metrics.mean_class_recall(labels, p.argmax(1), 8), abs=1e-6)
    assert float(ece.result()) == pytest.approx(metrics.expected_calibration_error(p, labels), abs=1e-5)


def test_paired_bootstrap_keeps_every_class_and_measures_the_difference():
    from ferkit.infer.metrics import paired_bootstrap

    labels = np.array([0] * 100 + [1] * 10)
    a = np.zeros(110, int)  # Every face of class 0 right, none of class 1.
    b = labels.copy()  # Every face right.
    result = paired_bootstrap(labels, a, b, num_classes=2, draws=300)
    # Drawn within classes, class 1 keeps its 10 faces in every draw: the
    # difference of mean recall is 0.5 in each, so the interval is a point.
    assert result["mean class recall"] == pytest.approx((0.5, 0.5, 0.5, 1.0))
    assert result["accuracy"] == pytest.approx((10 / 110, 10 / 110, 10 / 110, 1.0))
    same = paired_bootstrap(labels, a, a, num_classes=2, draws=50)
    assert same["accuracy"] == (0.0, 0.0, 0.0, 0.0)


def test_paired_bootstrap_interval_holds_the_difference_and_narrows_with_more_faces():
    from ferkit.infer.metrics import paired_bootstrap

    rng = np.random.default_rng(1)
    widths = []
    for n in (200, 5000):
        labels = rng.integers(0, 4, n)
        a = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 4)  # 70% right.
        b = np.where(rng.random(n) < 0.75, labels, (labels + 1) % 4)  # 75% right, errors independent of a's.
        d, low, high, ahead = paired_bootstrap(labels, a, b, num_classes=4, draws=500)["accuracy"]
        assert low < d < high and d == pytest.approx(np.mean(b == labels) - np.mean(a == labels))
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # About 1 / sqrt(25) as wide.
    assert low > 0 and ahead > 0.99  # With 5,000 faces, 5 points are sure.
