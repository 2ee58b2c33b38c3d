"""Class probabilities from one or several saved models, with optional
test-time augmentation, and the accuracy figures predict.py prints."""
import numpy as np

from fer2013 import CLASS_NAMES


def tta_views(images, tta):
    """The views a prediction averages over: the faces themselves and, with
    tta, their mirror images (faces are left-right symmetric in expression)."""
    yield images
    if tta:
        yield images[:, :, ::-1, :]


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
