"""The layers' side of precision: FusedBatchNormalization (Keras' layer
computed by TensorFlow's fused kernel, for bfloat16 training) and copies of
a model in another precision or back in stock layers (models.py re-exports
them; precision.py picks the precision).

Keras 3's BatchNormalization is built from unfused ops that upcast to float32,
and under bfloat16 they cost more than the convolutions. FusedBatchNormalization
is the same layer (same weights, same moving-statistics update) computed by
TensorFlow's fused kernel. It is only ever used in memory: saved models hold
the stock layer (see `stock_layers`), so they load with plain Keras.
"""
import keras
from keras import layers

from ferkit.nets.precision import policy


@keras.saving.register_keras_serializable(package="fer")
class FusedBatchNormalization(layers.BatchNormalization):
    """BatchNormalization through TensorFlow's FusedBatchNormV3 kernel.

    Same weights and semantics as the stock layer: in training it normalizes
    with the batch mean and biased variance and moves the moving statistics by
    `momentum`; in inference it uses the moving statistics. The fused kernel
    takes bfloat16/float16 activations with float32 statistics directly, so
    there is no upcast of the whole tensor. Only the default configuration
    (last axis, no renorm, no mask) is fused; anything else falls back to the
    stock code path.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or self.axis not in (-1, len(inputs.shape) - 1) \
                or len(inputs.shape) not in (2, 4) or keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        f32 = lambda v: tf.cast(v, tf.float32)
        gamma = f32(self.gamma) if self.scale else tf.ones([channels], tf.float32)
        beta = f32(self.beta) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32),
                epsilon=self.epsilon, is_training=True)[:3]
            # The kernel returns the unbiased variance (for the moving average, as
            # Keras 2 used it); Keras 3 averages the biased one, so undo n/(n-1).
            n = tf.cast(tf.size(x) // channels, tf.float32)
            variance = variance * (n - 1.0) / tf.maximum(n, 2.0)
            m = self.momentum
            self.moving_mean.assign(f32(self.moving_mean) * m + mean * (1.0 - m))
            self.moving_variance.assign(f32(self.moving_variance) * m + variance * (1.0 - m))
        else:
            y = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=f32(self.moving_mean), variance=f32(self.moving_variance),
                epsilon=self.epsilon, is_training=False)[0]
        if len(inputs.shape) != 4:
            y = tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)


def batch_norm_class(fused):
    return FusedBatchNormalization if fused else layers.BatchNormalization


def convert(model, precision="float32", fused=False):
    """A copy of a model with every layer in `precision` (the last layer stays
    float32) and, with fused=True, FusedBatchNormalization in place of the
    stock layer; fused=False turns fused layers back into stock ones. The
    weights are copied (variables are float32 in every precision)."""
    last = model.layers[-1].name
    target = policy(precision)

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "float32" if layer.name == last and target != "float16" else target
        if isinstance(layer, layers.BatchNormalization):
            return batch_norm_class(fused).from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    # clone_model also copies the compile state; a fresh Model over the same
    # layers has none, so saving it writes no optimizer variables (the
    # saved file is a third of the size).
    copy = keras.Model(copy.inputs, copy.outputs, name=model.name)
    copy.set_weights(model.get_weights())
    if hasattr(model, "class_names"):
        copy.class_names = model.class_names
    return copy


def stock_layers(model):
    """The model as it is saved: float32 stock layers only."""
    return convert(model, "float32", fused=False)
