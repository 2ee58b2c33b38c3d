"""The one place that turns a user's mistake into one line and exit status 2.

Every script ends with `cli.run(main)`: a DataError (bad CSV), ModelFileError
(missing or damaged model) or UsageError (bad flag value) prints
`error: <file>, line <n>: <problem>` on stderr and exits 2, with no
traceback. Anything else is a bug and keeps its traceback.
"""
import argparse
import os
import sys

# Quiet TensorFlow's C++ start-up chatter before any script imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import fer2013  # noqa: E402
from errors import DataError, ModelFileError, UsageError  # noqa: E402,F401  (scripts raise them as cli.*)


# The models released with the repository (see models/README.md), each as a
# .keras file and its ONNX copy: the default --model of every script that runs
# one, so they work right after set-up.
MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
RELEASED_MODEL = os.path.join(MODELS_DIR, "fer2013_cnn.keras")


# The released model emotions.py and serve.py read faces with (models/README.md
# says how it was chosen).
EMOTIONS_MODEL = "ferplus_cnn"


def released_model(name="fer2013_cnn", prefer_onnx=False):
    """A released model's path: its ONNX copy where TensorFlow is not
    installed (or prefer_onnx asks for it and the copy exists), else the
    .keras file."""
    import importlib.util

    keras_file, onnx_file = (os.path.join(MODELS_DIR, name + ext) for ext in (".keras", ".onnx"))
    if importlib.util.find_spec("tensorflow") is None or (prefer_onnx and os.path.isfile(onnx_file)):
        return onnx_file
    return keras_file


def require_keras_model(path, why):
    """Scripts that need gradients run on Keras only: one line for an .onnx file."""
    if os.fspath(path).lower().endswith(".onnx"):
        raise UsageError(f"--model {path}: {why} needs the Keras model (.keras); ONNX Runtime gives no gradients")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except where there is no value to
    show (None, or False for a switch): those flags say in their own help what
    leaving them out does, and '(default: None)' would only contradict it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parser(doc):
    """The argument parser every script starts from, described by the first
    line of doc (a script passes its module docstring)."""
    return argparse.ArgumentParser(description=doc.strip().splitlines()[0], formatter_class=HelpFormatter)


def add_precision_flag(parser, default="auto"):
    """--precision, shared by every script that runs a model (see precision.py)."""
    from precision import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help="float32, bfloat16 or float16 math (variables, softmax and loss stay float32); "
                             "auto: bfloat16 on a CPU with AVX512/AMX-BF16 or a GPU of compute capability >= 8.0")


def add_tta_flag(parser, default, modes, help):
    """--tta, with bare --tta meaning 'flip' (see inference.tta_views)."""
    parser.add_argument("--tta", nargs="?", const="flip", default=default, choices=modes, help=help)


def add_split_flags(parser):
    """--val-split, --seed and --limit for the figure scripts: they must name
    the same validation faces the training run held out."""
    parser.add_argument("--val-split", type=float, default=fer2013.VAL_SPLIT, help="validation fraction, as in training")
    parser.add_argument("--seed", type=int, default=fer2013.SPLIT_SEED, help="split seed, as in training")
    parser.add_argument("--limit", type=int, default=None, help="first N rows, as in training")


def validation_faces(args):
    """The labelled CSV --data and the row numbers of its validation split."""
    data = fer2013.load_csv(args.data, limit=args.limit)
    _, val_idx = fer2013.split_indices(data, args.val_split, args.seed)
    return data, val_idx


def load_model(path, precision_flag):
    """A saved model ready to run in the --precision asked for; prints the
    precision it resolved to. An .onnx file runs on ONNX Runtime in float32,
    with no TensorFlow import."""
    from inference import OnnxModel, is_onnx

    if is_onnx(path):
        print("precision: float32 (ONNX Runtime)")
        return OnnxModel(path)
    from models import load_model as load
    from precision import resolve

    compute = resolve(precision_flag)
    print(f"precision: {compute} (--precision {precision_flag})")
    return load(path, compute)


def run(main):
    try:
        main()
    except (DataError, ModelFileError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
