"""ferkit: facial expression recognition on FER2013 and FER+ with Keras 3.

The library under the repository's scripts (train_cnn.py, predict.py,
emotions.py, serve.py, ...). Importing it imports no TensorFlow: the modules
that need it import it inside the functions that run a model.
"""
__version__ = "0.4.0"

from ferkit import quiet as _quiet

_quiet.install()
