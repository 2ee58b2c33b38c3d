"""Where the files that travel with ferkit are: the released models, the
page's static files and its in-browser runtime. In a clone of the
repository they are its models/, static/ and node_modules/; in an installed
wheel, which carries the ONNX models and the page (pyproject.toml), they are
the package's released/ and static/ folders, and there is no in-browser
runtime (the page then sends frames to the server)."""
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The repository root, in a clone: the package sits one folder below it.
REPO_ROOT = os.path.dirname(PACKAGE_DIR)


def _clone_or_package(in_clone, in_package, marker):
    """The clone's folder where it holds marker (a folder of that name
    beside an installed package may be anything), else the package's."""
    clone = os.path.join(REPO_ROOT, in_clone)
    return clone if os.path.exists(os.path.join(clone, marker)) else os.path.join(PACKAGE_DIR, in_package)


MODELS_DIR = _clone_or_package("models", "released", "blazeface_full_range.onnx")
STATIC_DIR = _clone_or_package("static", "static", "index.html")
# onnxruntime-web, installed by `npm ci` (package.json): the page's in-browser runtime.
ORT_DIST = os.path.join(REPO_ROOT, "node_modules", "onnxruntime-web", "dist")
