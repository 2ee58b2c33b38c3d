"""FER2013: the Kaggle CSV layouts, class names, splits and data errors.

Everything that knows what a FER2013 file looks like lives here, so training,
prediction and the report scripts share one reader and one list of class
names. No TensorFlow import: this module is fast to import and easy to test.

    from ferkit.data.fer2013 import load_csv, split_indices
    data = load_csv("data/train.csv")          # data.images: (N, 48, 48, 1) uint8
    train_idx, val_idx = split_indices(data, val_split=0.1, seed=0)
"""
import os

import numpy as np

from ferkit.data import csvread  # The parser and its cache.
# Defined in dataset.py (shared with the parser); importers take them from here.
from ferkit.data.dataset import (CLASS_NAMES, FERPLUS_CLASSES, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS,  # noqa: F401
                            USAGES, Dataset)
from ferkit.errors import DataError  # noqa: F401  (raised here; importers take it from here too)


def load_csv(path, cache=True, limit=None):
    """Read a FER2013 CSV in any Kaggle layout, plain or gzipped.

    With cache=True the parsed arrays are kept in an .npz (csvread.cache_dir) keyed
    by the file's path, size and mtime, so the second load takes milliseconds.
    limit keeps the first `limit` rows. Raises DataError on any bad input.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(path, "no such file")
    stat = os.stat(path)
    cached = csvread.cache_file(path, stat) if cache else None
    data = csvread.read_cache(cached) if cached else None
    if data is None:
        data = csvread.parse_csv_bytes(csvread.read_bytes(path), path)
        if cached:
            csvread.write_cache(cached, data)
    return data if limit is None else data.subset(slice(0, limit))


def as_model_input(images):
    """Faces as every model takes them: (N, 48, 48, 1) uint8, raw 0-255 pixels.
    Accepts (N, 48, 48) too; anything else is a bug upstream, so it raises."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1) or images.dtype != np.uint8:
        raise ValueError(f"faces must be (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) uint8, got {images.dtype} {images.shape}")
    return images


VAL_SPLIT = 0.1
SPLIT_SEED = 0


def split_indices(data, val_split=VAL_SPLIT, seed=SPLIT_SEED):
    """(train_idx, val_idx). With a Usage column: Training trains, PublicTest
    validates (PrivateTest is held out). Otherwise a seeded split stratified by
    label, so every class keeps its share in both parts."""
    if data.labels is None:
        raise DataError("<data>", "this file has no labels, so it cannot be used for training")
    if data.usage is not None:
        return np.flatnonzero(data.usage == 0), np.flatnonzero(data.usage == 1)
    if not 0 <= val_split < 1:
        raise ValueError(f"--val-split must be in [0, 1), got {val_split}")
    rng = np.random.default_rng(seed)
    val = []
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(data.labels == c)
        n_val = int(round(len(members) * val_split))
        val.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(data)), val)
    return train, val


def test_indices(data):
    """The held-out test rows: PrivateTest, in a file with a Usage column
    (FER2013's private test, which is also FER+'s test set); none otherwise.
    Training never selects on them; they are scored once, at the end."""
    if data.usage is None:
        return np.zeros(0, np.int64)
    return np.flatnonzero(data.usage == USAGES.index("PrivateTest"))


def load_labels(path):
    """An `id,label` answer key (such as public_labels.csv) -> {id: label}.
    Standard library only, so inference without TensorFlow needs no pandas."""
    import csv

    if not os.path.isfile(path):
        raise DataError(path, "no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(path, f"not a CSV file ({e})") from None
    if not rows or [c.strip().lower() for c in rows[0]] != ["id", "label"]:
        raise DataError(path, "expected the header 'id,label'", line=1)
    answers = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        i, label = [c.strip() for c in row] if len(row) == 2 else ("", "")
        if not (i.isdigit() and label.isdigit() and int(label) < NUM_CLASSES):
            raise DataError(path, f"expected an integer id and a label 0-6, found {','.join(row)[:40]!r}", line)
        answers[int(i)] = int(label)
    return answers


def match_labels(data, key_path):
    """(mask, labels): which rows of data an id,label key answers, and its
    labels for them, in row order. DataError when it answers none."""
    answers = load_labels(key_path)
    known = np.array([i in answers for i in data.ids.tolist()], bool)
    if not known.any():
        raise DataError(key_path, "none of its ids occur in the faces' file")
    return known, np.array([answers[i] for i in data.ids[known].tolist()])


def validation_faces(path, val_split=VAL_SPLIT, split_seed=SPLIT_SEED, limit=None):
    """The labelled CSV at path and the row numbers of its validation split:
    the same faces training validated on, given the same split flags."""
    data = load_csv(path, limit=limit)
    _, val_idx = split_indices(data, val_split, split_seed)
    return data, val_idx
