"""Class probabilities from one or several saved models, with optional
test-time augmentation, and the accuracy figures predict.py prints."""
import numpy as np

from fer2013 import CLASS_NAMES, as_model_input


TTA_MODES = ("none", "flip", "shifts")
SHIFT = 3  # Pixels; training shifts faces by up to 10% (4.8 px).


def tta_views(images, tta):
    """The views a prediction averages over. 'none': the faces as they are.
    'flip': also their mirror images (expressions are left-right symmetric).
    'shifts': both of those, each also moved SHIFT pixels up, down, left and
    right (edges repeated), ten views in all, like ten-crop evaluation."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, not {tta!r}")
    yield images
    if tta == "none":
        return
    mirrored = images[:, :, ::-1, :]
    yield mirrored
    if tta == "shifts":
        s = SHIFT
        for view in (images, mirrored):
            padded = np.pad(view, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
            size = view.shape[1]
            for dy, dx in ((0, s), (2 * s, s), (s, 0), (s, 2 * s)):
                yield padded[:, dy : dy + size, dx : dx + size, :]


class Predictor:
    """Mean softmax of every model over every TTA view, for batches of faces.

    Each model runs through one traced function made once (model.predict pays
    for callbacks and progress machinery on every call, and a new tf.function
    per call would retrace), so a video can call it frame after frame. Faces
    stay uint8 until each batch is cast."""

    def __init__(self, models, tta="none", batch_size=256):
        import tensorflow as tf

        self.tta, self.batch_size = tta, batch_size
        self.class_names = class_names_of(models)
        self.forwards = [
            tf.function(lambda x, m=model: m(tf.cast(x, tf.float32), training=False), reduce_retracing=True)
            for model in models
        ]

    def __call__(self, images):
        """(N, 48, 48, 1) uint8 faces -> (N, classes) float32 probabilities."""
        images = as_model_input(images)
        total = np.zeros((len(images), len(self.class_names)), np.float64)
        count = 0
        for forward in self.forwards:
            for view in tta_views(images, self.tta):
                for lo in range(0, len(view), self.batch_size):
                    batch = np.ascontiguousarray(view[lo : lo + self.batch_size])
                    total[lo : lo + len(batch)] += forward(batch).numpy()
                count += 1
        return (total / count).astype(np.float32)


def class_names_of(models):
    """The classes every model of an ensemble predicts; they must agree."""
    names = [tuple(getattr(m, "class_names", CLASS_NAMES)) for m in models]
    if any(n != names[0] for n in names):
        raise ValueError("the models of an ensemble must predict the same classes, got "
                         + " and ".join(f"{len(n)} ({', '.join(n)})" for n in sorted(set(names))))
    return names[0]


def predict_proba(models, images, tta="none", batch_size=256):
    """Mean softmax of every model over every view: (N, classes) float32."""
    return Predictor(models, tta, batch_size)(images)


def accuracy_lines(labels, predicted, class_names=CLASS_NAMES):
    """Overall and per-class accuracy, as printable lines."""
    lines = [f"accuracy {np.mean(labels == predicted):.4f} on {len(labels)} faces"]
    for c, name in enumerate(class_names):
        members = labels == c
        if members.any():
            lines.append(f"  {name:<9} {np.mean(predicted[members] == c):.4f}  ({members.sum()} faces)")
    return lines
