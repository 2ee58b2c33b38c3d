"""Export a saved .keras model to ONNX (or LiteRT), for inference without TensorFlow.

    python export.py models/ferplus_cnn.keras                    # -> models/ferplus_cnn.onnx, float16 weights
    python export.py models/cnn.keras --out cnn.onnx --weights float32
    python export.py models/cnn.keras --format litert            # -> models/cnn.tflite, built-in ops only

The file takes (batch, 48, 48, 1) float32 raw pixels (0-255; any batch size)
and gives one probability per class; the class names travel in its metadata.
Before writing, the export runs a batch of faces through both the Keras model
and ONNX Runtime (or the LiteRT interpreter) and refuses to write a file that
disagrees. ONNX needs tf2onnx and onnx at export time only (pip install
tf2onnx onnx onnxruntime). A LiteRT file holds TensorFlow Lite's built-in ops
only (a model that would need "Flex" ops is refused) and, unlike the ONNX
file, no class names.
"""
import json
import os
import tempfile

import numpy as np

from ferkit.programs import cli
from ferkit.data.fer2013 import IMAGE_SIZE
from ferkit.files import atomic_output

# What an export must reproduce: the same top class for every check face, and
# probabilities within this much (float16 weights move them by ~1e-4).
MAX_DIFFERENCE = 2e-3
CHECK_FACES = 256


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("model", help="saved .keras model")
    p.add_argument("--out", default=None, help="file to write (default: MODEL with .onnx, or .tflite for litert)")
    p.add_argument("--format", choices=("onnx", "litert"), default="onnx", help="ONNX (for ONNX Runtime) or LiteRT")
    p.add_argument("--weights", choices=("float16", "float32"), default=None,
                   help="how the weights are stored; the math is float32 either way (float16 halves the file) "
                        "(default: float16 for ONNX; LiteRT stores float32 only)")
    args = p.parse_args(argv)
    ext = ".onnx" if args.format == "onnx" else ".tflite"
    args.weights = args.weights or ("float16" if args.format == "onnx" else "float32")
    args.out = args.out or os.path.splitext(args.model)[0] + ext
    if not args.out.endswith(ext):
        raise cli.UsageError(f"--out {args.out}: a {args.format} file name must end in {ext}")
    return args


def require_exporters():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as e:
        raise cli.UsageError(f"exporting to ONNX needs {e.name}: pip install tf2onnx onnx onnxruntime") from None


def to_onnx(model, path):
    """The Keras model as ONNX (float32), with a fixed 48x48x1 input and a dynamic batch."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32, name="pixels")
    model.export(path, format="onnx", input_signature=[spec], verbose=False)


def store_weights_as_float16(graph_model, min_size=1024):
    """Each float32 weight of min_size values or more is stored as float16 and
    cast back to float32 where the graph starts, so the file is half the size
    and the math stays float32 (a float16 graph would run slower on a CPU)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = graph_model.graph
    casts = []
    for k, weight in enumerate(graph.initializer):
        if weight.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(weight)
        if values.size < min_size:
            continue
        name = weight.name
        half = numpy_helper.from_array(values.astype(np.float16), name=f"{name}_float16")
        graph.initializer[k].CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}_cast"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    return graph_model


def check_faces(n=CHECK_FACES, seed=0):
    """Faces to compare the two runtimes on: noise, smooth gradients and
    flat greys, so every activation range is exercised."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(n // 2, IMAGE_SIZE, IMAGE_SIZE, 1))
    ramp = np.linspace(0, 255, IMAGE_SIZE)[None, :, None, None] * rng.uniform(0.2, 1, size=(n - n // 2, 1, 1, 1))
    smooth = ramp + rng.normal(0, 12, size=(n - n // 2, IMAGE_SIZE, IMAGE_SIZE, 1))
    return np.clip(np.concatenate([noise, smooth]), 0, 255).astype(np.uint8)


def compare(keras_probabilities, onnx_probabilities, path, what="ONNX"):
    """Raise UsageError (and so write nothing) unless the two agree."""
    difference = float(np.abs(keras_probabilities - onnx_probabilities).max())
    agree = float(np.mean(keras_probabilities.argmax(1) == onnx_probabilities.argmax(1)))
    if difference > MAX_DIFFERENCE or agree < 1.0:
        raise cli.UsageError(f"{path}: the {what} export disagrees with Keras (largest probability difference "
                             f"{difference:.2e}, top class the same on {agree:.1%} of {len(keras_probabilities)} "
                             f"faces); nothing written")
    return difference, agree


def export(model_path, out, weights="float16"):
    """Write out (atomically) and return (largest difference, top-class agreement, bytes)."""
    require_exporters()
    import onnx

    from ferkit.nets.card import ONNX_KEY, read_card
    from ferkit.infer.inference import OnnxModel, Predictor, add_metadata
    from ferkit.nets.models import convert, load_model

    model = load_model(model_path)
    names = model.class_names
    model = convert(model, "float32", fused=False)  # float32 stock layers: what ONNX can express.
    with tempfile.TemporaryDirectory() as scratch:
        plain = os.path.join(scratch, "model.onnx")
        to_onnx(model, plain)
        graph_model = onnx.load(plain)
    if weights == "float16":
        graph_model = store_weights_as_float16(graph_model)
    card = read_card(model_path)
    extra = {ONNX_KEY: json.dumps(card, sort_keys=True)} if card is not None else {}
    add_metadata(graph_model, names, source=os.path.basename(model_path), weights=weights, **extra)
    onnx.checker.check_model(graph_model)
    faces = check_faces()
    model.class_names = names
    expected = Predictor([model])(faces)
    with atomic_output(out) as tmp:
        onnx.save(graph_model, tmp)
        difference, agree = compare(expected, Predictor([OnnxModel(tmp)])(faces), out)
    return difference, agree, os.path.getsize(out)


def export_litert(model_path, out, weights="float32"):
    """A LiteRT (.tflite) file through Keras' own LiteRT export of the float32
    stock-layer copy: TensorFlow Lite's built-in ops only (a file that would
    need Flex ops is refused), float32 weights; checked against Keras like the
    ONNX export. Returns (difference, agreement, bytes)."""
    import tensorflow as tf

    from ferkit.infer.inference import Predictor
    from ferkit.nets.models import convert, load_model

    if weights != "float32":
        raise cli.UsageError("--format litert stores float32 weights only (--weights float32)")
    model = load_model(model_path)
    names = model.class_names
    model = convert(model, "float32", fused=False)
    spec = tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32, name="pixels")
    faces = check_faces()
    with atomic_output(out) as tmp:
        model.export(tmp, format="litert", input_signature=[spec], verbose=False)
        with open(tmp, "rb") as f:
            if b"Flex" in f.read():
                raise cli.UsageError(f"{model_path}: its LiteRT conversion needs Flex (TensorFlow) ops; nothing written")
        interpreter = tf.lite.Interpreter(model_path=tmp)
        interpreter.resize_tensor_input(0, list(faces.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], faces.astype(np.float32))
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        model.class_names = names
        difference, agree = compare(Predictor([model])(faces), got, out, "LiteRT")
    return difference, agree, os.path.getsize(out)


def main(argv=None):
    args = parse_args(argv)
    write = export if args.format == "onnx" else export_litert
    difference, agree, size = write(args.model, args.out, args.weights)
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB, {args.weights} weights): on {CHECK_FACES} check faces the "
          f"top class matches Keras on {agree:.1%}, probabilities within {difference:.1e}")


if __name__ == "__main__":
    cli.run(main)
