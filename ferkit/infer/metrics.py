"""Scores of a model's probabilities against labels: accuracy, the recall of
each class and their mean (balanced accuracy), the expected calibration error
and the negative log-likelihood. NumPy only, so the inference environment
has them too.

Accuracy alone hides a model that reads every rare face as a common one: on
FER+, where 0.47% of the training faces are Disgust, a model can score 0.87
while finding a third of them. Mean class recall weighs each class equally;
the calibration error says whether a shown probability of 0.8 is right 80%
of the time.
"""
import numpy as np

ECE_BINS = 15


def recall_per_class(labels, predicted, num_classes):
    """(num_classes,) recall of each class; NaN for a class with no face."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels[predicted == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def confusion_matrix(labels, predicted, num_classes):
    """(num_classes, num_classes) counts: row the true class, column the predicted one."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def mean_class_recall(labels, predicted, num_classes):
    """The mean of the per-class recalls over the classes that have faces."""
    return float(np.nanmean(recall_per_class(labels, predicted, num_classes)))


def expected_calibration_error(probabilities, labels, bins=ECE_BINS):
    """Top-class ECE: faces binned by their top probability into equal-width
    bins; the face-weighted mean gap between each bin's accuracy and its mean
    confidence (Guo et al. 2017)."""
    probabilities, labels = np.asarray(probabilities, np.float64), np.asarray(labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(labels))


def negative_log_likelihood(probabilities, targets):
    """Mean cross-entropy of the probabilities against targets: integer
    labels (N,) or distributions (N, K), such as FER+'s vote shares."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return float(-np.mean(np.log(p[np.arange(len(p)), targets])))
    return float(-np.mean(np.sum(targets * np.log(p), axis=1)))


def summary(probabilities, labels, num_classes):
    """{accuracy, mean_recall, ece, nll} of probabilities against labels."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "mean_recall": mean_class_recall(labels, predicted, num_classes),
        "ece": expected_calibration_error(probabilities, labels),
        "nll": negative_log_likelihood(probabilities, labels),
    }


def class_table(labels, predicted, names):
    """Per-class precision, recall, F1 and face count as a fixed-width text
    table, with the accuracy and the mean recall (macro average) under it."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    width = max(len(n) for n in names + ("mean recall",))
    lines = [f"{'':>{width}}  precision  recall  f1-score  faces"]
    recalls = recall_per_class(labels, predicted, len(names))
    for c, name in enumerate(names):
        said = np.sum(predicted == c)
        precision = np.sum((predicted == c) & (labels == c)) / said if said else 0.0
        recall = 0.0 if np.isnan(recalls[c]) else recalls[c]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines.append(f"{name:>{width}}  {precision:9.3f}  {recall:6.3f}  {f1:8.3f}  {np.sum(labels == c):5d}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {np.mean(predicted == labels):9.3f}  {'':6}  {'':8}  {len(labels):5d}")
    lines.append(f"{'mean recall':>{width}}  {'':9}  {np.nanmean(recalls):6.3f}")
    return "\n".join(lines) + "\n"


def summary_line(scores):
    """'accuracy 0.8762, mean class recall 0.6700, ECE 0.0900, NLL 0.3900'."""
    parts = [f"accuracy {scores['accuracy']:.4f}", f"mean class recall {scores['mean_recall']:.4f}",
             f"ECE {scores['ece']:.4f}", f"NLL {scores['nll']:.4f}"]
    if "vote_nll" in scores:
        parts.append(f"NLL against the votes {scores['vote_nll']:.4f}")
    return ", ".join(parts)


def paired_bootstrap(labels, predicted_a, predicted_b, num_classes, draws=2000, seed=0, level=0.95):
    """How sure a difference between two models on the same faces is: the
    faces are drawn again with replacement within each true class (so every
    class keeps its number of faces, and a class of 13 faces never vanishes
    from the mean class recall), both models scored on each draw, and the
    difference b - a kept. Returns {"accuracy": ..., "mean class recall": ...},
    each (difference on the faces as they are, low, high, share of draws
    where b is ahead), low and high the central `level` interval."""
    labels = np.asarray(labels)
    right_a = np.asarray(predicted_a) == labels
    right_b = np.asarray(predicted_b) == labels
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == k) for k in range(num_classes)]
    by_class = [rows for rows in by_class if len(rows)]
    counts = np.array([len(rows) for rows in by_class], np.float64)
    accuracy, recall = np.empty(draws), np.empty(draws)
    for d in range(draws):
        # Hits of each class among its faces drawn again, for both models at once.
        picks = [rows[rng.integers(0, len(rows), len(rows))] for rows in by_class]
        hits_a = np.array([right_a[p].sum() for p in picks], np.float64)
        hits_b = np.array([right_b[p].sum() for p in picks], np.float64)
        accuracy[d] = (hits_b.sum() - hits_a.sum()) / counts.sum()
        recall[d] = np.mean((hits_b - hits_a) / counts)
    observed = {"accuracy": right_b.mean() - right_a.mean(),
                "mean class recall": mean_class_recall(labels, predicted_b, num_classes)
                - mean_class_recall(labels, predicted_a, num_classes)}
    tail = (1 - level) / 2 * 100
    return {name: (float(observed[name]), float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)),
                   float(np.mean(values > 0)))
            for name, values in (("accuracy", accuracy), ("mean class recall", recall))}
