"""The architectures (the seed's CNN and DNN, the ResNet, the pretrained
backbone of backbones.py), loading and saving a model with its labels and
card; copies in another precision and the fused BatchNorm are layers.py's.

Every model takes raw 48x48x1 pixels in [0, 255] and scales them itself, so
no caller can forget (or repeat) the preprocessing. Saved `.keras` files
hold the architecture, so `load_model(path)` is all that inference needs.
"""
import math
import os

import keras
from keras import layers

from ferkit.errors import ModelFileError
from ferkit.data.fer2013 import CLASS_NAMES, FERPLUS_CLASSES, IMAGE_SIZE, NUM_CLASSES
from ferkit.files import atomic_output
from ferkit.nets.backbones import PRETRAINED
from ferkit.nets.layers import FusedBatchNormalization, batch_norm_class, convert, stock_layers  # noqa: F401  (re-exported)

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
# BatchNorm's moving statistics follow the batches with momentum 0.9 (as in
# PyTorch) rather than Keras' 0.99: the first layers' activations have a
# variance near 1e-3, and from the initial 1.0 a 0.99 average needs ~700
# steps (3.5 epochs of FER2013) before inference-mode predictions make sense.
BN_MOMENTUM = 0.9


def scaled(units, width):
    """A layer's size times the width multiplier, never below one."""
    return max(1, round(units * width))


def build_cnn(name="cnn", fused_batch_norm=False, num_classes=NUM_CLASSES, width=1.0):
    """The seed CNN: three blocks of two 3x3 'same' convolutions (32, 64, 128
    filters), each followed by LeakyReLU and BatchNorm, each block ending in
    2x2 average pooling; Dense 2048 and Dense 1024 with LeakyReLU, BatchNorm
    and Dropout 0.3; Dropout 0.5; Dense 7 softmax.
    11,845,095 parameters, 7,040 of them non-trainable (BatchNorm statistics).

    Layers compute in Keras' global dtype policy (see precision.py) except the
    last, which stays float32 so the softmax and the loss are exact.
    fused_batch_norm=True (training only) computes BatchNorm with TensorFlow's
    fused kernel; the weights and their meaning are the same. num_classes=8
    for FER+ (one more output, 1,025 more parameters). width multiplies every
    layer's filters and units (0.5: 16/32/64 filters, Dense 1024 and 512,
    2,967,543 parameters): a smaller, faster model of the same shape."""
    BatchNormalization = batch_norm_class(fused_batch_norm)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(scaled(filters, width), 3, padding="same", name=f"conv{block}_{conv}")(x)
            x = layers.LeakyReLU(name=f"conv{block}_{conv}_act")(x)
            x = BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{block}_{conv}_bn")(x)
        x = layers.AveragePooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)  # (6, 6, 128) -> 4608
    for units in (scaled(2048, width), scaled(1024, width)):
        x = layers.Dense(units, name=f"dense{units}")(x)
        x = layers.LeakyReLU(name=f"dense{units}_act")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, name=f"dense{units}_bn")(x)
        x = layers.Dropout(0.3, name=f"dense{units}_drop")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def build_dnn(dropout=0.4, name="dnn", fused_batch_norm=False, num_classes=NUM_CLASSES, width=1.0):
    """The seed DNN: four Dense(1024) layers, each with BatchNorm, then Dense 7
    softmax: 5,532,679 parameters, 8,192 non-trainable. The seed's version
    overfits (public 0.338); dropout after each block (no parameters) is what
    regularizes it here. dropout=0 gives the seed's layer list exactly. Precision and
    fused_batch_norm and width as in build_cnn."""
    BatchNormalization = batch_norm_class(fused_batch_norm)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, 5):
        x = layers.Dense(scaled(1024, width), name=f"dense{i}")(x)
        x = BatchNormalization(momentum=BN_MOMENTUM, name=f"dense{i}_bn")(x)
        x = layers.Activation("relu", name=f"dense{i}_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dense{i}_drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def residual_block(x, filters, stride, BatchNormalization, name):
    """A pre-activation basic block (He et al., 2016): BN, ReLU, 3x3 conv
    (strided to downsample), BN, ReLU, 3x3 conv, added to the input; the
    shortcut is a strided 1x1 conv where the shape changes."""
    y = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(x)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        # The projection reads the normalised input, as in the pre-activation
        # paper, averaged over 2x2 first rather than strided (ResNet-D: a
        # strided 1x1 convolution drops three pixels of four).
        shortcut = layers.AveragePooling2D(stride, name=f"{name}_pool")(y) if stride != 1 else y
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(y)
    y = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    y = layers.Activation("relu", name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


# (filters, blocks) of each stage; every stage after the first halves the
# resolution: 48 -> 24 -> 12 -> 6 pixels.
RESNET_STAGES = ((32, 1), (64, 2), (128, 2), (256, 2))


def build_resnet(name="resnet", fused_batch_norm=False, num_classes=NUM_CLASSES, width=1.0, dropout=0.3):
    """A small pre-activation ResNet for 48x48 faces, made to generalise
    rather than to memorise positions: a 3x3 stem, four stages of basic
    blocks (32/64/128/256 filters; 1, 2, 2, 2 blocks) at 48, 24, 12 and 6
    pixels, then global average pooling, Dropout and one Dense softmax. The
    seed's 4,608x2,048 dense layer, 80% of its weights, ties each feature to
    a place in the picture; averaging over the picture does not.
    2,780,840 parameters for FER+'s 8 classes at width 1, 3,776 of them
    BatchNorm statistics (the seed CNN has 11.8M), 0.54 GFLOP a face (the
    seed's 0.19). width multiplies every stage's filters (keep it a multiple
    of 1/32, so the filters stay multiples of 8: at width 0.75, 24 filters,
    it trains slower than at width 1 on oneDNN's bfloat16); precision and
    fused_batch_norm as in build_cnn."""
    BatchNormalization = batch_norm_class(fused_batch_norm)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = layers.Conv2D(scaled(RESNET_STAGES[0][0], width), 3, padding="same", use_bias=False, name="stem")(x)
    for stage, (filters, blocks) in enumerate(RESNET_STAGES, start=1):
        for block in range(1, blocks + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = residual_block(x, scaled(filters, width), stride, BatchNormalization, f"stage{stage}_{block}")
    x = BatchNormalization(momentum=BN_MOMENTUM, name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)  # (6, 6, 256) -> 256
    x = layers.Dropout(dropout, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name=name)


def build_faceres(fused_batch_norm=False, **kwargs):
    """HSE_FaceRec_tf's MobileNet, pretrained for face recognition, with a new
    head (backbones.build_faceres: input_size, weights)."""
    from ferkit.nets.backbones import build_faceres

    return build_faceres(batch_norm=batch_norm_class(fused_batch_norm), **kwargs)


ARCHITECTURES = {"cnn": build_cnn, "dnn": build_dnn, "resnet": build_resnet, "faceres": build_faceres}
# Pretrained face-recognition networks with a new head (backbones.py): they take --input-size and their weights.
BACKBONES = PRETRAINED


def flops_per_image(model):
    """Forward FLOPs of one face: 2 x the multiply-adds of the convolutions
    and dense layers (the rest is a rounding error beside them)."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            flops += 2 * h * w * c_out * math.prod(layer.kernel_size) * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return int(flops)


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
    names = read_class_names(path)
    if tuple(model.input_shape[1:]) != INPUT_SHAPE or model.output_shape[-1] != len(names):
        raise ModelFileError(
            f"{path}: expects input {model.input_shape[1:]} and gives {model.output_shape[-1]} "
            f"outputs; a model here takes {INPUT_SHAPE} and gives one per class ({len(names)}: {', '.join(names)})"
        )
    if precision is not None:
        model = convert(model, precision, fused=True)
    model.class_names = names  # What each output means, for every script that shows one.
    return model


# The label set travels inside the .keras file (a zip): one extra entry that
# Keras' own loader ignores. A file without it is an older FER2013 release.
LABELS_ENTRY = "labels.json"
LABEL_SETS = {"fer2013": CLASS_NAMES, "ferplus": FERPLUS_CLASSES}


def label_set_for(num_classes):
    """The label set a model with num_classes outputs is trained on here."""
    for name, classes in LABEL_SETS.items():
        if len(classes) == num_classes:
            return name
    raise ValueError(f"no label set has {num_classes} classes")


def read_class_names(path):
    """The class names a saved .keras model predicts, in output order."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            if LABELS_ENTRY not in z.namelist():
                return CLASS_NAMES
            entry = json.loads(z.read(LABELS_ENTRY))
        names = tuple(entry["class_names"])
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: unreadable {LABELS_ENTRY} ({e})") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{path}: {LABELS_ENTRY} holds no list of class names")
    return names


def save_model(model, path, float16_weights=False, card=None):
    """Save a model as its float32 stock-layer copy, with the names of the
    classes it predicts, written atomically. float16_weights: the weights
    stored in float16 (half the size) under the same float32 layers, so
    plain keras.saving.load_model gives float32 variables and float32 math;
    a float16 dtype policy instead would have Keras emulate float16 on a CPU
    (22 faces/s against 407 for the FER+ release, 2 cores of an AMD EPYC).
    card: how the model was made (card.py), written beside the labels."""
    import json
    import zipfile

    names = LABEL_SETS[label_set_for(model.output_shape[-1])]
    copy = convert(model, "float32")
    with atomic_output(path) as tmp:
        copy.save(tmp)
        if float16_weights:
            store_weights_in_float16(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(LABELS_ENTRY, json.dumps({"label_set": label_set_for(len(names)), "class_names": list(names)}))
            if card is not None:
                from ferkit.nets.card import CARD_ENTRY

                z.writestr(CARD_ENTRY, json.dumps(card, indent=1, sort_keys=True))


def store_weights_in_float16(path):
    """Rewrite a saved .keras file (a zip) with every float32 array of its
    model.weights.h5 stored as float16; the model's config is untouched.
    Keras casts each array to its variable's dtype when it loads it."""
    import tempfile
    import zipfile

    import h5py
    import numpy as np

    def halve(source, target):
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for name, item in source.items():
            if isinstance(item, h5py.Dataset):
                data = item[()]
                target.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
            else:
                halve(item, target.create_group(name))

    with tempfile.TemporaryDirectory() as folder:
        original = os.path.join(folder, "original.keras")
        os.replace(path, original)
        with zipfile.ZipFile(original) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "model.weights.h5":
                    full, half = os.path.join(folder, "full.h5"), os.path.join(folder, "half.h5")
                    with open(full, "wb") as f:
                        f.write(data)
                    with h5py.File(full, "r") as source, h5py.File(half, "w") as target:
                        halve(source, target)
                    with open(half, "rb") as f:
                        data = f.read()
                zout.writestr(item, data)


def save_float16(model, path, card=None):
    """Save a model with its weights stored in float16, for release: half the
    size of float32 (23 MB for the CNN), float32 stock Keras layers that
    keras.saving.load_model opens with safe_mode and runs at float32 speed.
    The prediction changes the rounding causes are measured in
    models/README.md."""
    save_model(model, path, float16_weights=True, card=card)
