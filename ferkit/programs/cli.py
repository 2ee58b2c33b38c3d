"""The one place that turns a user's mistake into one line and exit status 2.

Every script ends with `cli.run(main)`: a DataError (bad CSV), ModelFileError
(missing or damaged model) or UsageError (bad flag value) prints
`error: <file>, line <n>: <problem>` on stderr and exits 2, with no
traceback. Anything else is a bug and keeps its traceback.
"""
import argparse
import os
import sys

from ferkit.data import fer2013
from ferkit import paths
from ferkit import quiet
from ferkit.errors import DataError, ModelFileError, TrainingStopped, UsageError  # noqa: F401  (scripts raise them as cli.*)


# The released models, the default --model of every script that runs one
# (paths.py, beside the inference core), re-exported for the scripts.
MODELS_DIR, RELEASED_MODEL, EMOTIONS_MODEL = paths.MODELS_DIR, paths.RELEASED_MODEL, paths.EMOTIONS_MODEL
released_model = paths.released_model


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


class VerboseAction(argparse.Action):
    """--verbose: TensorFlow's own logging back on (see quiet.py). It acts
    while the flags are parsed, before any script imports TensorFlow."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        quiet.verbose()
        setattr(namespace, self.dest, True)


def parser(doc):
    """The argument parser every script starts from, described by the first
    line of doc (a script passes its module docstring). A script that makes
    one asks for a quiet TensorFlow (quiet.py) before anything imports it."""
    quiet.install()
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], formatter_class=HelpFormatter)
    p.add_argument("--verbose", action=VerboseAction,
                   help=f"show TensorFlow's C++ logging, which is hidden by default (or set {quiet.VERBOSE_ENV}=1)")
    return p


def add_precision_flag(parser, default="auto"):
    """--precision, shared by every script that runs a model (see precision.py)."""
    from ferkit.nets.precision import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help="float32, bfloat16 or float16 math (variables, softmax and loss stay float32); "
                             "auto: bfloat16 on a CPU with AVX512/AMX-BF16 or a GPU of compute capability >= 8.0")


def add_tta_flag(parser, default, modes, help):
    """--tta, with bare --tta meaning 'flip' (see inference.tta_views)."""
    parser.add_argument("--tta", nargs="?", const="flip", default=default, choices=modes, help=help)


def add_split_flags(parser):
    """--val-split, --split-seed and --limit: the training scripts and the
    figure scripts define them here, once, so both name the same validation
    faces for a file without a Usage column."""
    parser.add_argument("--val-split", type=float, default=fer2013.VAL_SPLIT,
                        help="validation fraction, stratified, when the CSV has no Usage column")
    parser.add_argument("--split-seed", type=int, default=fer2013.SPLIT_SEED,
                        help="seed of the validation split alone, so runs with different --seed share one validation set")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N rows (quick runs)")


def run(main, argv=None):
    """main(argv) (the command line's flags when argv is None), with a
    user's mistake turned into one line and exit status 2."""
    try:
        main(argv)
    except (DataError, ModelFileError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingStopped as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
