"""Class probabilities from one or several saved models, with optional
test-time augmentation, and the accuracy figures predict.py prints."""
import numpy as np

from fer2013 import CLASS_NAMES


TTA_MODES = ("flip", "shifts")
SHIFT = 3  # Pixels; training shifts faces by up to 10% (4.8 px).


def tta_views(images, tta):
    """The views a prediction averages over. None: the faces as they are.
    'flip': also their mirror images (expressions are left-right symmetric).
    'shifts': both of those, each also moved SHIFT pixels up, down, left and
    right (edges repeated), ten views in all, like ten-crop evaluation."""
    yield images
    if not tta:
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


def predict_proba(models, images, tta=False, batch_size=256):
    """Mean softmax of every model over every view: (N, 7) float32.

    Calls each model in fixed-size batches through one compiled function
    rather than model.predict, which pays for its callbacks and progress
    machinery; the images stay uint8 until each batch is cast."""
    import tensorflow as tf

    total = np.zeros((len(images), len(CLASS_NAMES)), np.float64)
    count = 0
    for model in models:
        forward = tf.function(lambda x: model(tf.cast(x, tf.float32), training=False), reduce_retracing=True)
        for view in tta_views(images, tta):
            for lo in range(0, len(view), batch_size):
                total[lo : lo + batch_size] += forward(np.ascontiguousarray(view[lo : lo + batch_size])).numpy()
            count += 1
    return (total / count).astype(np.float32)


def accuracy_lines(labels, predicted):
    """Overall and per-class accuracy, as printable lines."""
    lines = [f"accuracy {np.mean(labels == predicted):.4f} on {len(labels)} faces"]
    for c, name in enumerate(CLASS_NAMES):
        members = labels == c
        if members.any():
            lines.append(f"  {name:<9} {np.mean(predicted[members] == c):.4f}  ({members.sum()} faces)")
    return lines
