"""Mean class recall and the expected calibration error as Keras metrics, so
that training's per-epoch validation line and log carry them beside
accuracy. The same definitions as metrics.py (which has no TensorFlow):
classes by the argmax of the target, ECE over 15 equal-width bins of the top
probability."""
import keras
from keras import ops

from ferkit.infer.metrics import ECE_BINS


@keras.saving.register_keras_serializable(package="fer", name="MeanClassRecall")
class MeanClassRecall(keras.metrics.Metric):
    """The mean over classes (those with faces so far) of each one's recall."""

    def __init__(self, num_classes, name="mean_recall", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.counts = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="counts")
        self.hits = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.argmax(y_true, axis=-1)
        one_hot = ops.one_hot(truth, self.num_classes, dtype="float32")
        right = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), truth), "float32")
        self.counts.assign_add(ops.sum(one_hot, axis=0))
        self.hits.assign_add(ops.sum(one_hot * right[:, None], axis=0))

    def result(self):
        seen = ops.cast(self.counts > 0, "float32")
        recall = self.hits / ops.maximum(self.counts, 1.0)
        return ops.sum(recall * seen) / ops.maximum(ops.sum(seen), 1.0)

    def reset_state(self):
        for v in (self.counts, self.hits):
            v.assign(ops.zeros_like(v))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="fer", name="CalibrationError")
class CalibrationError(keras.metrics.Metric):
    """Top-class expected calibration error over ECE_BINS bins."""

    def __init__(self, bins=ECE_BINS, name="ece", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bins = int(bins)
        shape = (self.bins,)
        self.count = self.add_variable(shape=shape, initializer="zeros", name="count")
        self.confidence = self.add_variable(shape=shape, initializer="zeros", name="confidence")
        self.correct = self.add_variable(shape=shape, initializer="zeros", name="correct")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        top = ops.max(y_pred, axis=-1)
        right = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.argmax(y_true, axis=-1)), "float32")
        which = ops.minimum(ops.cast(top * self.bins, "int32"), self.bins - 1)
        in_bin = ops.one_hot(which, self.bins, dtype="float32")
        self.count.assign_add(ops.sum(in_bin, axis=0))
        self.confidence.assign_add(ops.sum(in_bin * top[:, None], axis=0))
        self.correct.assign_add(ops.sum(in_bin * right[:, None], axis=0))

    def result(self):
        gap = ops.abs(self.correct - self.confidence)  # count x |accuracy - confidence| per bin
        return ops.sum(gap) / ops.maximum(ops.sum(self.count), 1.0)

    def reset_state(self):
        for v in (self.count, self.confidence, self.correct):
            v.assign(ops.zeros_like(v))

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}
