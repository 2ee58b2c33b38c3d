"""What a FER2013 face and a parsed CSV are: the class names, the picture
size, the usage parts, and the Dataset of arrays. The CSV parser
(csvread.py) and the data set's rules (fer2013.py) both build on it, so
neither imports the other's constants."""
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
# FER+ adds contempt; its classes keep FER2013's order, so the first seven line up.
FERPLUS_CLASSES = CLASS_NAMES + ("Contempt",)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
USAGES = ("Training", "PublicTest", "PrivateTest")


@dataclass
class Dataset:
    """One CSV's content. images: (N, 48, 48, 1) uint8; labels: (N,) int8 or
    None; ids: (N,) int64 (row numbers where the file has no id column);
    usage: (N,) int8 index into USAGES, or None. targets: (N, classes)
    float32 training targets where the labels are more than one class per
    face (FER+'s votes; see ferplus.py), else None."""

    images: np.ndarray
    labels: np.ndarray | None
    ids: np.ndarray
    usage: np.ndarray | None
    targets: np.ndarray | None = None

    def __len__(self):
        return len(self.images)

    def subset(self, index):
        pick = lambda a: None if a is None else a[index]
        return Dataset(self.images[index], pick(self.labels), self.ids[index], pick(self.usage), pick(self.targets))
