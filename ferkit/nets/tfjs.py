"""TensorFlow.js graph models (a model.json and its weight shards) read
into NumPy arrays, and run node by node with TensorFlow's own kernels.

The runner is the reference a rebuilt Keras model is checked against
(backbones.py): it executes the graph exactly as written, folded BatchNorm,
Mul/Add pairs and clip-by-value ReLU6 included, so an error in the rebuild's
layer order, padding or weight mapping shows as a difference.
"""
import base64
import json
import os

import numpy as np

from ferkit.errors import ModelFileError

# How the converter stores a weight (its quantization) and what it stands for.
STORED = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "uint16": np.uint16, "int32": np.int32}


def read_graph_model(path):
    """(nodes, weights) of a TensorFlow.js graph model: its model.json's
    node list and {name: float32 or int32 array}, dequantised."""
    try:
        with open(path) as f:
            spec = json.load(f)
        nodes = spec["modelTopology"]["node"]
        groups = spec["weightsManifest"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: not a TensorFlow.js graph model ({e})") from None
    folder = os.path.dirname(os.path.abspath(path))
    weights = {}
    for group in groups:
        try:
            data = b"".join(open(os.path.join(folder, shard), "rb").read() for shard in group["paths"])
        except OSError as e:
            raise ModelFileError(f"{path}: a weight shard is missing ({e})") from None
        offset = 0
        for entry in group["weights"]:
            quant = entry.get("quantization", {})
            stored = STORED[quant.get("dtype", entry["dtype"])]
            count = int(np.prod(entry["shape"], dtype=np.int64))
            raw = np.frombuffer(data, stored, count, offset)
            offset += count * np.dtype(stored).itemsize
            if "scale" in quant:  # Affine integer quantisation.
                raw = raw * np.float32(quant["scale"]) + np.float32(quant["min"])
            weights[entry["name"]] = raw.astype(np.int32 if entry["dtype"] == "int32" else np.float32).reshape(
                entry["shape"])
        if offset != len(data):
            raise ModelFileError(f"{path}: its shards hold {len(data)} bytes, the manifest describes {offset}")
    return nodes, weights


def attr(node, key, default=None):
    """A node attribute as Python: ints, strings, lists of either, booleans."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(i) for i in items["i"]]
        return [base64.b64decode(s).decode() for s in items.get("s", [])]
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "b" in value:
        return bool(value["b"])
    if "f" in value:
        return float(value["f"])
    return default


def run_graph(nodes, weights, inputs, outputs):
    """The graph's values of the named outputs for {placeholder: array}:
    each node computed by the TensorFlow op it names, in the listed order
    of what it needs."""
    import tensorflow as tf

    by_name = {n["name"]: n for n in nodes}
    values = {}
    simple = {"Add": tf.add, "AddV2": tf.add, "BiasAdd": tf.add, "Mul": tf.multiply, "Sub": tf.subtract,
              "Minimum": tf.minimum, "Maximum": tf.maximum, "Relu": tf.nn.relu, "Relu6": tf.nn.relu6,
              "Sigmoid": tf.sigmoid, "Softmax": tf.nn.softmax, "Identity": tf.identity,
              "MatMul": tf.linalg.matmul, "Reshape": tf.reshape}

    def value(name):
        name = name.split(":")[0]
        if name not in values:
            values[name] = compute(by_name[name])
        return values[name]

    def compute(node):
        op, args = node["op"], [value(i) for i in node.get("input", []) if not i.startswith("^")]
        if op == "Placeholder":
            return tf.constant(inputs[node["name"]])
        if op == "Const":
            return tf.constant(weights[node["name"]])
        if op == "Conv2D":
            return tf.nn.conv2d(args[0], args[1], attr(node, "strides"), attr(node, "padding"),
                                dilations=attr(node, "dilations", [1, 1, 1, 1]))
        if op == "DepthwiseConv2dNative":
            return tf.nn.depthwise_conv2d(args[0], args[1], attr(node, "strides"), attr(node, "padding"),
                                          dilations=attr(node, "dilations", [1, 1, 1, 1])[1:3])
        if op == "_FusedMatMul":
            y = tf.linalg.matmul(args[0], args[1], transpose_a=attr(node, "transpose_a", False),
                                 transpose_b=attr(node, "transpose_b", False))
            for fused, extra in zip(attr(node, "fused_ops", []), args[2:] + [None] * 2):
                if fused == "BiasAdd":
                    y = y + extra
                elif fused == "Relu":
                    y = tf.nn.relu(y)
            return y
        if op in simple:
            return simple[op](*args)
        if op == "Mean":
            return tf.reduce_mean(args[0], axis=args[1], keepdims=attr(node, "keep_dims", False))
        raise ModelFileError(f"graph node {node['name']}: op {op} is not supported here")

    return [value(name).numpy() for name in outputs]
