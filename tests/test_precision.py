"""precision.py and the precision parts of models.py: the fused BatchNorm
against the stock layer, --precision auto, and bfloat16-trained models that
load as plain Keras."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import learnable_faces

import keras
import tensorflow as tf
from keras import layers

from ferkit.nets import models
from ferkit.nets import precision
from ferkit.nets.models import build_cnn, build_dnn, count_params


@pytest.mark.parametrize("shape", [(16, 6, 6, 5), (32, 9)])
def test_fused_batch_norm_matches_the_stock_layer(shape):
    """Same outputs, gradients and moving statistics, in training and inference."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
    stock, fused = layers.BatchNormalization(momentum=0.9), models.FusedBatchNormalization(momentum=0.9)
    stock.build(shape)
    fused.build(shape)
    start = [rng.normal(1.0, 0.2, w.shape).astype("float32") for w in stock.get_weights()]
    start[3] = np.abs(start[3])  # A variance.
    stock.set_weights(start)
    fused.set_weights(start)
    weights = lambda layer: [layer.gamma, layer.beta]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_stock, y_fused = stock(x, training=True), fused(x, training=True)
        loss_stock, loss_fused = tf.reduce_sum(y_stock**3), tf.reduce_sum(y_fused**3)
    np.testing.assert_allclose(y_fused, y_stock, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss_fused, x), tape.gradient(loss_stock, x), rtol=1e-3, atol=1e-3)
    for g_fused, g_stock in zip(tape.gradient(loss_fused, weights(fused)), tape.gradient(loss_stock, weights(stock))):
        np.testing.assert_allclose(g_fused, g_stock, rtol=1e-4, atol=1e-2)
    for w_fused, w_stock in zip(fused.get_weights(), stock.get_weights()):  # Moving mean and (biased) variance.
        np.testing.assert_allclose(w_fused, w_stock, rtol=1e-5, atol=1e-6)
    assert not np.allclose(stock.get_weights()[2], start[2])  # The statistics did move.
    np.testing.assert_allclose(fused(x, training=False), stock(x, training=False), atol=1e-5)


def test_fused_batch_norm_in_bfloat16_keeps_float32_statistics():
    layer = models.FusedBatchNormalization(momentum=0.9, dtype="mixed_bfloat16")
    y = layer(tf.random.normal((8, 4, 4, 3)), training=True)
    assert y.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in layer.weights)


@pytest.mark.parametrize("flags, expected", [({"avx512_bf16"}, "bfloat16"), ({"amx_bf16", "amx_tile"}, "bfloat16"),
                                             ({"avx2", "fma"}, "float32")])
def test_auto_picks_bfloat16_only_where_the_cpu_has_it(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert precision.resolve("auto") == expected
    assert precision.resolve("float16") == "float16"


@pytest.mark.parametrize("build", [build_cnn, build_dnn])
def test_convert_keeps_weights_and_a_float32_softmax(build):
    model = build()
    fast = models.convert(model, "bfloat16", fused=True)
    assert count_params(fast) == count_params(model)
    assert any(isinstance(layer, models.FusedBatchNormalization) for layer in fast.layers)
    assert fast.layers[-1].dtype_policy.name == "float32" and fast.layers[2].dtype_policy.name == "mixed_bfloat16"
    assert all(w.dtype == "float32" for w in fast.weights)
    for a, b in zip(fast.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    back = models.stock_layers(fast)
    assert not any(isinstance(layer, models.FusedBatchNormalization) for layer in back.layers)
    assert {layer.dtype_policy.name for layer in back.layers} == {"float32"}


LOAD_PLAIN = """
import json, sys
import numpy as np, keras
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
x = np.load(sys.argv[2])
print(json.dumps({"modules": sorted({type(l).__module__.split('.')[0] for l in model.layers}),
                  "probabilities": model(x, training=False).numpy().tolist()}))
"""


def test_bfloat16_training_saves_a_model_plain_keras_loads(tmp_path):
    """Train a few steps with fused BatchNorm in bfloat16, save as the training
    loop does, load in a fresh process that cannot import this project, and
    get the in-memory model's predictions back."""
    images, labels = learnable_faces(10, seed=4)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        model = build_cnn(fused_batch_norm=True, width=0.5)  # The layers of the release, half as wide: quicker.
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(images.astype("float32"), labels, batch_size=16, epochs=1, verbose=0)  # 5 steps.
    finally:
        keras.config.set_dtype_policy("float32")
    path, faces = tmp_path / "m.keras", tmp_path / "x.npy"
    models.stock_layers(model).save(path)
    np.save(faces, images[:16].astype("float32"))
    expected = model(images[:16].astype("float32"), training=False).numpy()
    isolated = tmp_path / "elsewhere"
    isolated.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", LOAD_PLAIN, str(path), str(faces)], cwd=isolated, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["modules"] == ["keras"]  # Stock layers only.
    probabilities = np.array(loaded["probabilities"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, expected, atol=0.03)  # bfloat16 in memory vs float32 loaded.
    assert np.mean(probabilities.argmax(1) == expected.argmax(1)) >= 0.9
