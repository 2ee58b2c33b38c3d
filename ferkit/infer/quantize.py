"""Int8 copies of the exported classifiers, by ONNX Runtime's quantisation.

Two ways, both measured on the released FER+ model (PublicTest, flip TTA,
report 13):

- the dense layers (the default): their weights int8, each call's
  activations quantised as they come (dynamic quantisation, no calibration).
  The dense layers hold 95% of the weights, and at one face a call their
  float32 weights (40 MB) are read from memory on every call, which costs
  more than their arithmetic: the file shrinks to half and the top class
  stays the same on 99.7% of the faces.
- the convolutions too (`faces` given): static QDQ, weights int8 per output
  channel, activations uint8 with one MinMax range per tensor over training
  faces. Twice as fast again at one face a call, but the top class moved on
  1.4-1.5% of the faces, over the 1% the gate allows: the activations share
  one range across channels (weights alone, rounded to int8 in a float graph,
  moved 0.25%); equalising the channels' ranges, correcting each layer's bias,
  other calibration methods and keeping one convolution float did not bring it
  under 1% reliably. Quantisation-aware fine-tuning is what would.

LeakyReLU, BatchNorm and the softmax stay float32 either way (quantising
every op moved the top class on 8.9% of the faces). The int8 file runs on any
ONNX Runtime and takes and gives what the float file does.
"""
import json
import os

import numpy as np

from ferkit.errors import UsageError

CALIBRATION_FACES = 512
STATIC_OPS = ("Conv", "AveragePool")


def float32_initializers(graph_model):
    """The export stores large weights as float16 cast back at the graph's
    start (export.store_weights_as_float16); the quantiser needs them as
    float32 constants, so each such Cast is folded into its weight."""
    from onnx import numpy_helper

    graph = graph_model.graph
    weights = {w.name: w for w in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in weights:
            values = numpy_helper.to_array(weights.pop(node.input[0])).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(values, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    for weight in [w for w in graph.initializer if w.name not in used]:
        graph.initializer.remove(weight)
    return graph_model


def conv_layers(graph_model):
    """{short layer name: node name} of the model's convolutions, e.g.
    'conv3_1' -> 'cnn_1/conv3_1_1/BiasAdd' (Keras' layer names, which
    tf2onnx keeps in the node names)."""
    found = {}
    for node in graph_model.graph.node:
        if node.op_type == "Conv":
            parts = node.name.split("/")
            layer = parts[1] if len(parts) > 1 else parts[0]
            short = layer[:-2] if layer.endswith("_1") else layer
            found[short] = node.name
    return found


def quantize(source, out, faces=None, keep_float=(), extra_metadata=None):
    """Write `out`, the int8 copy of the ONNX classifier `source`: its dense
    layers dynamically quantised; given `faces` ((N, 48, 48, 1) uint8,
    training faces), its convolutions too, calibrated on them, but for the
    ones `keep_float` names (conv_layers' short names). The source's
    metadata (class names, card) is carried over, with what was done added
    to the card. Returns the file's size."""
    import logging

    import onnx
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader

    from ferkit.files import atomic_output
    from ferkit.nets.card import ONNX_KEY

    onnxruntime.set_default_logger_severity(3)  # Not the graph clean-up's warnings about unused weights.
    graph_model = onnx.load(source)
    source_meta = {p.key: p.value for p in graph_model.metadata_props}
    graph_model = float32_initializers(graph_model)
    layers = conv_layers(graph_model)
    unknown = [name for name in keep_float if name not in layers]
    if unknown:
        raise UsageError(f"{source}: no convolution named {', '.join(unknown)} (it has {', '.join(layers)})")
    if keep_float and faces is None:
        raise UsageError("keep_float names convolutions kept float, which only applies when they are quantised")
    input_name = graph_model.graph.input[0].name

    class Faces(CalibrationDataReader):
        def __init__(self):
            batches = np.asarray(faces, np.float32)
            self.batches = iter([{input_name: batches[i : i + 64]} for i in range(0, len(batches), 64)])

        def get_next(self):
            return next(self.batches, None)

    # Nor the quantiser's advice to pre-process (done where it matters), for this call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        result = _quantized(graph_model, faces, Faces, layers, keep_float)
    finally:
        root.setLevel(level)
    card = json.loads(source_meta.get(ONNX_KEY, "null")) or {}
    card["int8"] = {"source": os.path.basename(source), "dense": "dynamic",
                    "convolutions": "float32" if faces is None else "static",
                    **({"calibration_faces": len(faces), "float_convolutions": list(keep_float)} if faces is not None else {}),
                    **(extra_metadata or {})}
    meta = {**source_meta, ONNX_KEY: json.dumps(card, sort_keys=True), "weights": "int8",
            "source": os.path.basename(source)}
    del result.metadata_props[:]
    for key, value in meta.items():
        prop = result.metadata_props.add()
        prop.key, prop.value = key, value
    with atomic_output(out) as tmp:
        onnx.save(result, tmp)
    return os.path.getsize(out)


def _quantized(graph_model, faces, reader, layers, keep_float):
    """The int8 model quantize() writes: the dense layers dynamic, and with
    faces the convolutions static (all but keep_float), via scratch files."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as scratch:
        plain, dense, prepared, static = (os.path.join(scratch, f"{n}.onnx")
                                          for n in ("plain", "dense", "prepared", "static"))
        onnx.save(graph_model, plain)
        # MatMul before the pre-processing below, which fuses MatMul and Add into Gemm.
        quantize_dynamic(plain, dense, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        result = dense
        if faces is not None:
            # Shape inference and graph clean-up first, as ONNX Runtime advises; no symbolic shapes (no sympy).
            quant_pre_process(dense, prepared, skip_symbolic_shape=True)
            quantize_static(prepared, static, reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(STATIC_OPS),
                            nodes_to_exclude=[layers[name] for name in keep_float])
            result = static
        result = onnx.load(result)
    return result


def agreement(reference, candidate):
    """(share of faces whose top class is the same, largest probability difference)."""
    return float(np.mean(reference.argmax(1) == candidate.argmax(1))), float(np.abs(reference - candidate).max())
