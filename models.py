"""The architectures: the seed's CNN and DNN, and loading a saved model.

Both models take raw 48x48x1 pixels in [0, 255] and scale them to [0, 1]
themselves, so no caller can forget (or repeat) the preprocessing. Saved
`.keras` files hold the architecture, so `load_model(path)` is all that
inference needs.
"""
import os

import keras
from keras import layers

from cli import ModelFileError
from fer2013 import IMAGE_SIZE, NUM_CLASSES
from precision import batch_norm_class

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
# BatchNorm's moving statistics follow the batches with momentum 0.9 (as in
# PyTorch) rather than Keras' 0.99: the first layers' activations have a
# variance near 1e-3, and from the initial 1.0 a 0.99 average needs ~700
# steps (3.5 epochs of FER2013) before inference-mode predictions make sense.
BN_MOMENTUM = 0.9


def build_cnn(name="cnn", fused_batch_norm=False):
    """The seed CNN: three blocks of two 3x3 'same' convolutions (32, 64, 128
    filters), each followed by LeakyReLU and BatchNorm, each block ending in
    2x2 average pooling; Dense 2048 and Dense 1024 with LeakyReLU, BatchNorm
    and Dropout 0.3; Dropout 0.5; Dense 7 softmax.
    11,845,095 parameters, 7,040 of them non-trainable (BatchNorm statistics).

    Layers compute in Keras' global dtype policy (see precision.py) except the
    last, which stays float32 so the softmax and the loss are exact.
    fused_batch_norm=True (training only) computes BatchNorm with TensorFlow's
    fused kernel; the weights and their meaning are the same."""
    BatchNormalization = batch_norm_class(fused_batch_norm)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", name=f"conv{block}_{conv}")(x)
            x = layers.LeakyReLU(name=f"conv{block}_{conv}_act")(x)
            x = BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{block}_{conv}_bn")(x)
        x = layers.AveragePooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)  # (6, 6, 128) -> 4608
    for units in (2048, 1024):
        x = layers.Dense(units, name=f"dense{units}")(x)
        x = layers.LeakyReLU(name=f"dense{units}_act")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, name=f"dense{units}_bn")(x)
        x = layers.Dropout(0.3, name=f"dense{units}_drop")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def build_dnn(dropout=0.4, name="dnn", fused_batch_norm=False):
    """The seed DNN: four Dense(1024) layers, each with BatchNorm, then Dense 7
    softmax: 5,532,679 parameters, 8,192 non-trainable. The seed's version
    overfits (public 0.338); dropout after each block (no parameters) is what
    regularizes it here. dropout=0 gives the seed's layer list exactly. Precision and
    fused_batch_norm as in build_cnn."""
    BatchNormalization = batch_norm_class(fused_batch_norm)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, 5):
        x = layers.Dense(1024, name=f"dense{i}")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, name=f"dense{i}_bn")(x)
        x = layers.Activation("relu", name=f"dense{i}_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dense{i}_drop")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


ARCHITECTURES = {"cnn": build_cnn, "dnn": build_dnn}


def count_params(model):
    """(total, non_trainable) parameter counts."""
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return model.count_params(), non_trainable


def load_model(path, precision=None):
    """Load a saved .keras model with nothing but its path. safe_mode stays on,
    so a file cannot run code (no Lambda layers, nothing unpickled).

    precision (float32, bfloat16 or float16; see precision.py) gives an
    in-memory copy that computes in that precision with fused BatchNorm;
    None returns the model exactly as stored."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a damaged file.
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{path}: not a readable Keras model ({detail})") from None
    if tuple(model.input_shape[1:]) != INPUT_SHAPE or model.output_shape[-1] != NUM_CLASSES:
        raise ModelFileError(
            f"{path}: expects input {model.input_shape[1:]} and gives {model.output_shape[-1]} "
            f"outputs; a FER2013 model takes {INPUT_SHAPE} and gives {NUM_CLASSES}"
        )
    if precision is not None:
        from precision import convert

        model = convert(model, precision, fused=True)
    return model


def save_float16(model, path):
    """Save a model with its weights stored in float16, for release: half the
    size of float32 (23 MB for the CNN), still stock Keras layers that
    keras.saving.load_model opens with safe_mode. load_model(path, precision)
    turns it back into float32 variables; the prediction changes this causes
    are measured in models/README.md."""
    from fer2013 import atomic_output
    from precision import convert

    half = convert(model, "float16-weights")
    with atomic_output(path) as tmp:
        half.save(tmp)
