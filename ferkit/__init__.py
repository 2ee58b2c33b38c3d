"""ferkit: facial expression recognition on FER2013 and FER+ with Keras 3.

    from ferkit import EmotionReader
    reader = EmotionReader()
    faces = reader.read("photo.jpg")   # [{"box": [x, y, w, h], "emotion": "Happy", "probabilities": {...}, ...}]

The library under the repository's scripts (train_cnn.py, predict.py,
emotions.py, serve.py, ...) and the `ferkit` command. Importing it imports no
TensorFlow: the modules that need it import it inside the functions that run
a model, and changes nothing in the interpreter (the scripts ask for a quiet
TensorFlow themselves, through cli.parser). EmotionReader (reader.py) is
loaded when first asked for.
"""
__version__ = "0.4.0"


def __getattr__(name):
    # `from ferkit import EmotionReader` without loading OpenCV and ONNX Runtime
    # for every `import ferkit.something`.
    if name == "EmotionReader":
        from ferkit.infer.reader import EmotionReader

        return EmotionReader
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
