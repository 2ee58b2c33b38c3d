"""Class probabilities from one or several saved models, Keras or ONNX
Runtime, with optional test-time augmentation, and the accuracy figures
predict.py prints. Nothing here imports TensorFlow unless a Keras model runs."""
import json
import os

import numpy as np

from ferkit.errors import ModelFileError
from ferkit.data.fer2013 import CLASS_NAMES, IMAGE_SIZE, as_model_input


# "tencrop" was called "shifts" until the shift benchmark (bench.py shifts) took that name.
TTA_MODES = ("none", "flip", "tencrop")
SHIFT = 3  # Pixels; training shifts faces by up to 10% (4.8 px).


def tta_views(images, tta):
    """The views a prediction averages over. 'none': the faces as they are.
    'flip': also their mirror images (expressions are left-right symmetric).
    'tencrop': both of those, each also moved SHIFT pixels up, down, left and
    right (edges repeated), ten views in all, like ten-crop evaluation."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, not {tta!r}")
    yield images
    if tta == "none":
        return
    mirrored = images[:, :, ::-1, :]
    yield mirrored
    if tta == "tencrop":
        s = SHIFT
        for view in (images, mirrored):
            padded = np.pad(view, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
            size = view.shape[1]
            for dy, dx in ((0, s), (2 * s, s), (s, 0), (s, 2 * s)):
                yield padded[:, dy : dy + size, dx : dx + size, :]


class OnnxModel:
    """A model exported by export.py, run by ONNX Runtime: no TensorFlow.
    Calling it maps (N, 48, 48, 1) uint8 faces to (N, classes) probabilities."""

    def __init__(self, path):
        import onnxruntime

        self.path = path
        if not os.path.isfile(path):
            raise ModelFileError(f"{path}: no such model file")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # Errors only: no start-up chatter on stderr.
        # Idle pool threads sleep instead of spinning: between two small calls
        # (one face of a photo or a video frame) a spinning thread takes a core
        # from the face detector on a 2-core machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime raises its own exception types for a damaged file.
            detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ModelFileError(f"{path}: not a readable ONNX model ({detail})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [IMAGE_SIZE, IMAGE_SIZE, 1] \
                or inputs[0].type != "tensor(float)":
            shown = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise ModelFileError(f"{path}: takes {shown}; a model here takes one float input "
                                 f"(batch, {IMAGE_SIZE}, {IMAGE_SIZE}, 1)")
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.class_names = tuple(json.loads(meta["class_names"]))
        except (KeyError, ValueError):
            raise ModelFileError(f"{path}: has no class names in its metadata; export it with export.py") from None
        width = outputs[0].shape[-1] if len(outputs) == 1 else None
        if width != len(self.class_names):
            raise ModelFileError(f"{path}: gives {width} outputs for {len(self.class_names)} class names")
        self.input_name = inputs[0].name

    def __call__(self, images):
        return self.session.run(None, {self.input_name: np.asarray(images, np.float32)})[0]


def add_metadata(graph_model, class_names, **extra):
    """Write the class names (and extra strings) into an ONNX model's metadata."""
    entries = {"class_names": json.dumps(list(class_names)), **{k: str(v) for k, v in extra.items()}}
    for key, value in entries.items():
        prop = graph_model.metadata_props.add()
        prop.key, prop.value = key, value


def is_onnx(path):
    return os.fspath(path).lower().endswith(".onnx")


class Predictor:
    """Mean softmax of every model over every TTA view, for batches of faces.

    Models are Keras models or OnnxModel files. Each Keras model runs through
    one traced function made once (model.predict pays for callbacks and
    progress machinery on every call, and a new tf.function per call would
    retrace), so a video can call it frame after frame. Faces stay uint8 until
    each batch is cast. TensorFlow is imported only for Keras models."""

    def __init__(self, models, tta="none", batch_size=256):
        self.tta, self.batch_size = tta, batch_size
        self.class_names = class_names_of(models)
        self.forwards = [model if isinstance(model, OnnxModel) else keras_forward(model) for model in models]

    def __call__(self, images, tta=None):
        """(N, 48, 48, 1) uint8 faces -> (N, classes) float32 probabilities;
        tta: this call's TTA instead of the predictor's own."""
        images = as_model_input(images)
        total = np.zeros((len(images), len(self.class_names)), np.float64)
        count = 0
        for forward in self.forwards:
            for view in tta_views(images, tta or self.tta):
                for lo in range(0, len(view), self.batch_size):
                    batch = np.ascontiguousarray(view[lo : lo + self.batch_size])
                    total[lo : lo + len(batch)] += np.asarray(forward(batch))
                count += 1
        return (total / count).astype(np.float32)


def keras_forward(model):
    import tensorflow as tf

    forward = tf.function(lambda x: model(tf.cast(x, tf.float32), training=False), reduce_retracing=True)
    return lambda batch: forward(batch).numpy()


def class_names_of(models):
    """The classes every model of an ensemble predicts; they must agree."""
    names = [tuple(getattr(m, "class_names", CLASS_NAMES)) for m in models]
    if any(n != names[0] for n in names):
        raise ValueError("the models of an ensemble must predict the same classes, got "
                         + " and ".join(f"{len(n)} ({', '.join(n)})" for n in sorted(set(names))))
    return names[0]


def predict_proba(models, images, tta="none", batch_size=256):
    """Mean softmax of every model over every view: (N, classes) float32."""
    return Predictor(models, tta, batch_size)(images)


def accuracy_lines(labels, predicted, class_names=CLASS_NAMES, probabilities=None):
    """Accuracy, mean class recall (and, given the probabilities, the
    calibration error), then each class's recall, as printable lines."""
    from ferkit.infer import metrics

    head = (f"accuracy {np.mean(labels == predicted):.4f} on {len(labels)} faces, mean class recall "
            f"{metrics.mean_class_recall(labels, predicted, len(class_names)):.4f}")
    if probabilities is not None:
        head += f", ECE {metrics.expected_calibration_error(probabilities, labels):.4f}"
    lines = [head]
    for c, name in enumerate(class_names):
        members = labels == c
        if members.any():
            lines.append(f"  {name:<9} {np.mean(predicted[members] == c):.4f}  ({members.sum()} faces)")
    return lines


def open_model(path, precision="auto"):
    """(a saved model ready to run, the precision it runs in): an .onnx file
    on ONNX Runtime in float32, with no TensorFlow import; a .keras file in
    `precision` resolved (precision.py). Prints nothing."""
    if is_onnx(path):
        return OnnxModel(path), "float32"
    from ferkit.nets.models import load_model as load_keras
    from ferkit.nets.precision import resolve

    compute = resolve(precision)
    return load_keras(path, compute), compute


def load_for_script(path, precision_flag):
    """open_model for the scripts: the model, with the precision it resolved
    to printed. (models.load_model opens a .keras file alone, as stored.)"""
    model, compute = open_model(path, precision_flag)
    print(precision_line(path, precision_flag, compute))
    return model


def precision_line(path, precision_flag, compute):
    """What the scripts print of the precision a model runs in."""
    return f"precision: {compute} (ONNX Runtime)" if is_onnx(path) else f"precision: {compute} (--precision {precision_flag})"
