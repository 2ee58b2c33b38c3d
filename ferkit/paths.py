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


# The released models (models/README.md), each a .keras file, its ONNX copy
# and an int8 copy of that (quantize.py; an installed wheel has the ONNX
# files alone): the default model of every script and of EmotionReader.
EMOTIONS_MODEL = "ferplus_cnn"  # What emotions.py, the server, the page and EmotionReader read faces with.
RELEASED_MODEL = os.path.join(MODELS_DIR, "fer2013_cnn.keras")  # The Kaggle model: predict.py, confusion.py.


def released_model(name="fer2013_cnn", prefer_onnx=False, int8=False):
    """A released model's path: its ONNX copy where TensorFlow is not
    installed or the .keras file is not there (an installed wheel), or
    prefer_onnx asks for it and the copy exists; else the .keras file.
    int8: the int8 copy instead of the float ONNX one where there is one
    (it passed the accuracy gate of quantize.py: the default for reading
    photos, videos and camera frames)."""
    import importlib.util

    keras_file, onnx_file, int8_file = (os.path.join(MODELS_DIR, name + ext)
                                        for ext in (".keras", ".onnx", ".int8.onnx"))
    if importlib.util.find_spec("tensorflow") is None or not os.path.isfile(keras_file) \
            or (prefer_onnx and os.path.isfile(onnx_file)):
        return int8_file if int8 and os.path.isfile(int8_file) else onnx_file
    return keras_file
