"""Training for every class, not for the common ones, and calibrated
probabilities: the class prior, the balanced losses, and the two corrections
that are folded into a saved model's last layer (a prior shift and a
temperature), so that every runtime gives the same probabilities with no
side file.

FER+'s majority-labelled training faces are 35% Neutral and 29% Happy but
0.47% each Disgust and Contempt; a model fitted to that prior calls a face
Neutral whenever it is unsure. The remedies here (--balance):

- logit-adjust: Menon et al., "Long-tail learning via logit adjustment"
  (ICLR 2021). The loss sees log p + tau * log(prior), so the model itself
  learns the prior-free score; tau = 1 is the balanced softmax.
- reweight: each face's loss weighted by prior[class] ** -tau, normalised so
  the average weight over the training faces is 1.
- sample: classes drawn equally often (pipeline.make_dataset does this).

The output layer is Dense + softmax, so with z its logits,
softmax((z - tau * log prior) / T) is the same Dense with kernel / T and
bias (bias - tau * log prior) / T: that is how both corrections live in the
model. The shift comes before the temperature, so the temperature changes
how sure the model is and never which class it names.
"""
import functools

import numpy as np

BALANCE_MODES = ("none", "logit-adjust", "reweight", "sample")


def class_prior(targets, num_classes):
    """Each class's share of the training targets: (N,) labels or (N, K)
    one-hot or soft targets. A class without a face gets a floor of 1e-6 so
    its log stays finite."""
    targets = np.asarray(targets)
    if targets.ndim == 1:
        prior = np.bincount(targets, minlength=num_classes).astype(np.float64)
    else:
        prior = targets.astype(np.float64).sum(axis=0)
    prior = np.maximum(prior / prior.sum(), 1e-6)
    return prior / prior.sum()


def class_weights(prior, tau=1.0):
    """prior ** -tau, scaled so that sum(prior * weights) = 1: the mean weight
    of a training face stays 1, so the learning rate means what it did."""
    w = np.asarray(prior, np.float64) ** -tau
    return w / np.sum(prior * w)


def make_loss(mode, prior, tau=1.0, label_smoothing=0.0):
    """The training loss of a balance mode (none and sample: plain
    cross-entropy), on the model's softmax outputs."""
    import keras

    LogitAdjustedLoss, WeightedCrossentropy = loss_classes()
    if mode == "logit-adjust":
        return LogitAdjustedLoss(prior=list(map(float, prior)), tau=tau, label_smoothing=label_smoothing)
    if mode == "reweight":
        return WeightedCrossentropy(weights=list(map(float, class_weights(prior, tau))),
                                    label_smoothing=label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def _smooth(keras, y_true, label_smoothing):
    k = keras.ops.cast(keras.ops.shape(y_true)[-1], y_true.dtype)
    return y_true * (1.0 - label_smoothing) + label_smoothing / k


@functools.cache
def loss_classes():
    """Keras loss classes, defined on first use so importing this module
    needs no TensorFlow. Registered so a compiled model's copy finds them."""
    import keras

    @keras.saving.register_keras_serializable(package="fer", name="LogitAdjustedLoss")
    class LogitAdjustedLoss(keras.losses.Loss):
        """Cross-entropy of softmax(log p + tau * log prior): the model's
        outputs p are pushed to be the prior-free class scores."""

        def __init__(self, prior, tau=1.0, label_smoothing=0.0, name="logit_adjusted", **kwargs):
            super().__init__(name=name, **kwargs)
            self.prior, self.tau, self.label_smoothing = list(prior), float(tau), float(label_smoothing)
            self.shift = keras.ops.convert_to_tensor(self.tau * np.log(np.asarray(self.prior)), "float32")

        def call(self, y_true, y_pred):
            ops = keras.ops
            y_true = _smooth(keras, ops.cast(y_true, "float32"), self.label_smoothing)
            logits = ops.log(ops.maximum(ops.cast(y_pred, "float32"), 1e-7)) + self.shift
            log_q = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
            return -ops.sum(y_true * log_q, axis=-1)

        def get_config(self):
            return {**super().get_config(), "prior": self.prior, "tau": self.tau,
                    "label_smoothing": self.label_smoothing}

    @keras.saving.register_keras_serializable(package="fer", name="WeightedCrossentropy")
    class WeightedCrossentropy(keras.losses.Loss):
        """Cross-entropy weighted per face by its target's class weights."""

        def __init__(self, weights, label_smoothing=0.0, name="weighted_crossentropy", **kwargs):
            super().__init__(name=name, **kwargs)
            self.weights, self.label_smoothing = list(weights), float(label_smoothing)
            self.w = keras.ops.convert_to_tensor(np.asarray(self.weights), "float32")

        def call(self, y_true, y_pred):
            ops = keras.ops
            y_true = ops.cast(y_true, "float32")
            weight = ops.sum(y_true * self.w, axis=-1)
            y_smooth = _smooth(keras, y_true, self.label_smoothing)
            log_p = ops.log(ops.maximum(ops.cast(y_pred, "float32"), 1e-7))
            return -weight * ops.sum(y_smooth * log_p, axis=-1)

        def get_config(self):
            return {**super().get_config(), "weights": self.weights, "label_smoothing": self.label_smoothing}

    return LogitAdjustedLoss, WeightedCrossentropy


def output_layer(model):
    """The model's last Dense layer (the softmax over the classes)."""
    layer = model.layers[-1]
    if type(layer).__name__ != "Dense" or len(layer.get_weights()) != 2:
        raise ValueError(f"{model.name}: the last layer is {type(layer).__name__}, not a Dense with a bias")
    return layer


def fold_into_output(model, temperature=1.0, prior=None, tau=0.0):
    """Change the model in place so that its probabilities become
    softmax((z - tau * log(prior)) / temperature) of its old logits z."""
    layer = output_layer(model)
    kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
    if prior is not None and tau:
        bias = bias - tau * np.log(np.asarray(prior, np.float64))
    layer.set_weights([(kernel / temperature).astype(np.float32), (bias / temperature).astype(np.float32)])
    return model


def adjust_probabilities(probabilities, temperature=1.0, prior=None, tau=0.0):
    """What fold_into_output does to a model, done to its probabilities."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-30, 1.0))
    if prior is not None and tau:
        logits = logits - tau * np.log(np.asarray(prior, np.float64))
    logits = logits / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(views, labels, low=0.05, high=20.0):
    """The temperature T that minimises the negative log-likelihood on
    labels of the mean over views of softmax(log p / T): views is one (N, K)
    array of probabilities or a list of them (TTA views, each tempered
    before the mean, as a model with T folded in gives them). Golden-section
    search over log T, which the NLL is unimodal in."""
    from ferkit.infer.metrics import negative_log_likelihood

    views = [views] if isinstance(views, np.ndarray) else list(views)
    nll = lambda log_t: negative_log_likelihood(
        np.mean([adjust_probabilities(v, np.exp(log_t)) for v in views], axis=0), labels)
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(50):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return float(np.exp((a + b) / 2))
