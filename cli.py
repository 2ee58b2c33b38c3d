"""The one place that turns a user's mistake into one line and exit status 2.

Every script ends with `cli.run(main)`: a DataError (bad CSV), ModelFileError
(missing or damaged model) or UsageError (bad flag value) prints
`error: <file>, line <n>: <problem>` on stderr and exits 2, with no
traceback. Anything else is a bug and keeps its traceback.
"""
import os
import sys

# Quiet TensorFlow's C++ start-up chatter before any script imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer2013 import DataError  # noqa: E402


class UsageError(ValueError):
    """A flag value that cannot work, such as a layer name the model lacks."""


class ModelFileError(ValueError):
    """A model file that is missing or cannot be read."""


def run(main):
    try:
        main()
    except (DataError, ModelFileError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
