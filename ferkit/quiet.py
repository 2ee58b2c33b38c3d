"""A quiet start: TensorFlow's C++ logging off unless asked for.

Importing TensorFlow 2.21 on a CPU machine prints half a dozen lines of its
C++ logging (oneDNN's notice, "Could not find cuda drivers", the CPU-feature
notice, absl's "before absl::InitializeLog()" line), and its first operation
adds "E0000 ... failed call to cuInit" on a machine without a GPU. None of
them means something is wrong, but they read like a broken install.

Two parts, because TensorFlow prints the import-time lines before it reads
TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442): the variable, set to 3
before TensorFlow loads, silences everything after the import; the import
itself runs with file descriptor 2 caught, and what it printed goes back to
stderr without the lines of TensorFlow's C++ logging. Anything else
(a Python warning, a real error) still shows.

FERKIT_VERBOSE=1, or --verbose on any script, turns both parts off.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# I0000 00:00:1796288136.442793    3904 port.cc:153] ..., and the lines that
# go with them.
TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)
VERBOSE_ENV = "FERKIT_VERBOSE"
_user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def is_verbose():
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def filtered_stderr():
    """Catch what C/C++ code writes to fd 2 and replay it without TensorFlow's log lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                if not TF_LOG_LINE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        uninstall()  # TensorFlow loads once; nothing else needs this.
        module.__loader__ = self.loader
        with filtered_stderr():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` the usual way and has it loaded under
    filtered_stderr. A bare importlib.util.find_spec (asking whether
    TensorFlow is installed) passes through here too, and loads nothing."""

    searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_finder = _QuietFinder()


def install():
    """Quiet TensorFlow from here on, unless FERKIT_VERBOSE is set or it is already loaded."""
    if is_verbose() or "tensorflow" in sys.modules:
        return
    if _user_level is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall():
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def verbose():
    """Everything TensorFlow logs, as --verbose asks: call before it loads."""
    os.environ[VERBOSE_ENV] = "1"
    uninstall()
    if _user_level is None:
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = _user_level
