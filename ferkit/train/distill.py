"""Distillation: one model taught by others. The teachers (saved models:
several seeds or architectures) read every training face; their mean
probabilities, mixed with the face's own labels, become its training
targets, and the student is fitted to them by the training loss: the
recipe's cross-entropy, with its label smoothing (which mixes a little of the
uniform distribution into t) and its balancing, if any. Without those, the
cross-entropy is the Kullback-Leibler divergence from the teachers plus a
constant:

    loss = -sum_k t_k log p_k = KL(t || p) + H(t)

Only the training faces are read, so the validation faces (FER+'s
PublicTest) stay a fair judge of the student. The teachers read each face as
it is and mirrored (flip TTA), as emotions.py reads faces; the student still
sees its augmented copies, a cheap stand-in for asking the teachers about
every augmented view (Beyer et al., "Knowledge distillation: A good teacher
is patient and consistent", 2022, do the latter at a GPU's cost)."""
import numpy as np


def teacher_probabilities(paths, images, tta="flip"):
    """(N, classes) float32: the teachers' mean probabilities on the faces."""
    from ferkit.infer.inference import Predictor, load_for_script

    models = [load_for_script(path, "auto") for path in paths]
    return Predictor(models, tta)(images)


def blend(teacher, labels, weight):
    """Targets: weight x the teachers' probabilities + (1 - weight) x the
    face's own targets (one-hot labels or FER+'s vote shares), rows summing to 1."""
    teacher, labels = np.asarray(teacher, np.float64), np.asarray(labels, np.float64)
    if teacher.shape != labels.shape:
        raise ValueError(f"the teachers give {teacher.shape[1]} classes, the data has {labels.shape[1]}")
    targets = weight * teacher + (1.0 - weight) * labels
    return (targets / targets.sum(axis=1, keepdims=True)).astype(np.float32)


def distillation_loss(targets, probabilities):
    """The per-face loss the student is trained with (what Keras'
    categorical cross-entropy computes on soft targets), in NumPy, for tests
    and figures."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1.0)
    return -(np.asarray(targets, np.float64) * np.log(p)).sum(axis=1)
