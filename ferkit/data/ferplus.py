"""FER+: Microsoft's ten-annotator votes for every FER2013 face, and the label
rules of FER+'s own code (microsoft/FERPlus, src/ferplus.py).

`fer2013new.csv` has one row per row of Kaggle's `fer2013.csv` (or
`icml_face_data.csv`, which has the same row order), joined by position; its
`Image name` is a file name, not a row number, and an empty name marks a face
FER+ did not keep. No TensorFlow import.

    faces = fer2013.load_csv("data/fer2013.csv")
    votes = load_votes("data/fer2013new.csv", faces, "data/fer2013.csv")
    labels = majority_labels(votes)            # (N,) int8, -1 where FER+ keeps no label
    targets = training_targets(votes, "crossentropy")  # (N, 8) float32, zero rows dropped

Classes follow this project's order, FER2013's seven then Contempt
(fer2013.FERPLUS_CLASSES), so a FER2013 model's outputs line up with the first
seven of a FER+ model's.
"""
import csv
import os

import numpy as np

from ferkit.data.fer2013 import FERPLUS_CLASSES, USAGES, DataError

HEADER_TEXT = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
HEADER = tuple(HEADER_TEXT.lower().split(","))
# FER+'s vote columns in FER+'s order -> this project's class index; 8 and 9
# are FER+'s `unknown` and `NF` (not a face), which no model predicts.
COLUMN_CLASS = (6, 3, 5, 4, 0, 1, 2, 7, 8, 9)
NUM_CLASSES = len(FERPLUS_CLASSES)
LABEL_MODES = ("majority", "probability", "crossentropy", "multitarget")


def read_votes(path):
    """fer2013new.csv -> (usage (N,) int8 index into USAGES, named (N,) bool,
    votes (N, 10) float32 in FER+'s column order). DataError on bad input."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(path, "no such file")
    usage, named, votes = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = tuple(h.strip().lower() for h in next(reader, []))
        if header != HEADER:
            raise DataError(path, f"expected FER+'s header {HEADER_TEXT!r}", line=1)
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(HEADER):
                raise DataError(path, f"expected {len(HEADER)} comma-separated fields, found {len(row)}", line)
            if row[0].strip() not in USAGES:
                raise DataError(path, f"usage {row[0][:20]!r} is not one of {', '.join(USAGES)}", line)
            counts = [c.strip() for c in row[2:]]
            if not all(c.isdigit() and int(c) <= 10 for c in counts):
                raise DataError(path, f"vote counts must be integers 0-10, found {','.join(counts)[:60]!r}", line)
            usage.append(USAGES.index(row[0].strip()))
            named.append(bool(row[1].strip()))
            votes.append([int(c) for c in counts])
    if not votes:
        raise DataError(path, "no data rows after the header")
    return np.array(usage, np.int8), np.array(named, bool), np.array(votes, np.float32)


def load_votes(path, faces, faces_path):
    """The FER+ votes of `faces` (a fer2013.Dataset read from faces_path),
    checked to join row by row: the same number of rows and the same Usage on
    each. Votes of unnamed rows are zeroed: FER+ has no image for them, so no
    rule keeps them. Returns (N, 10) float32 in FER+'s column order."""
    usage, named, votes = read_votes(path)
    if faces.usage is None:
        raise DataError(faces_path, "has no Usage column; FER+ joins fer2013.csv or icml_face_data.csv by row")
    if len(usage) != len(faces):
        raise DataError(path, f"has {len(usage)} rows but {faces_path} has {len(faces)}; "
                              "FER+ joins fer2013.csv (or icml_face_data.csv) row by row")
    differ = np.flatnonzero(usage != faces.usage)
    if len(differ):
        i = differ[0]
        raise DataError(path, f"Usage {USAGES[usage[i]]} but {faces_path} says {USAGES[faces.usage[i]]} on the "
                              f"same row (data row {i + 1}): the files are not in the same row order", line=i + 2)
    votes[~named] = 0
    return votes


def _denoise(votes):
    """FER+'s outlier removal: a class with a single vote gets none."""
    return np.where(votes <= 1, 0, votes).astype(np.float32)


def _keep(kept, distribution):
    """FER+'s last step: keep a row whose processed distribution peaks on an
    emotion (not unknown/NF), as that emotion part renormalized; others -> 0."""
    total = distribution.sum(axis=1, keepdims=True)
    ok = kept & (total[:, 0] > 0)
    ok[ok] = np.argmax(distribution[ok], axis=1) < 8
    emotions = np.where(ok[:, None], distribution[:, :8], 0)
    sums = emotions.sum(axis=1, keepdims=True)
    emotions = np.divide(emotions, sums, out=np.zeros_like(emotions), where=sums > 0)
    # FER+'s column order -> this project's class order.
    out = np.zeros_like(emotions)
    out[:, list(COLUMN_CLASS[:8])] = emotions
    return out


def majority_targets(votes):
    """One-hot (N, 8) for rows whose top class holds more than half of the
    votes left after denoising, else a zero row."""
    v = _denoise(votes)
    top = np.argmax(v, axis=1)
    kept = v.max(axis=1) > 0.5 * v.sum(axis=1)
    one_hot = np.zeros_like(v)
    one_hot[np.arange(len(v)), top] = 1
    return _keep(kept, one_hot)


def _top_emotions(raw):
    """FER+'s probability/crossentropy rule for one row: take the classes with
    the most votes, then the next most, until they hold 75% of the votes or
    three classes are taken; an unknown/NF among them ends the count (and is
    left out where an emotion came before it). None when what is taken holds
    no more than half the votes, or more than three classes tie."""
    raw = list(raw)
    total = sum(raw)
    emotion = [0.0] * len(raw)
    part, count, valid = 0.0, 0, True
    while part < 0.75 * total and count < 3 and valid:
        top = max(raw)
        for i, v in enumerate(raw):
            if v == top:
                emotion[i] = top
                raw[i] = 0
                part += top
                count += 1
                if i >= 8:  # unknown or NF
                    valid = False
                    if sum(emotion) > top:  # emotions came first: leave the unknown/NF out
                        emotion[i] = 0
                        count -= 1
                    break
    if sum(emotion) <= 0.5 * total or count > 3:
        return None
    return emotion


def distribution_targets(votes):
    """The vote distribution (N, 8) of FER+'s probability and crossentropy
    modes (see _top_emotions); zero rows for dropped faces."""
    v = _denoise(votes)
    rows = [_top_emotions(r) for r in v]
    kept = np.array([r is not None for r in rows])
    dist = np.array([r if r is not None else [0.0] * 10 for r in rows], np.float32).reshape(len(v), 10)
    return _keep(kept, dist)


def multitarget_targets(votes, threshold=0.3):
    """The classes of FER+'s multi-target mode: each class with at least 30%
    of the votes, weighted by its votes (N, 8); a zero row where those hold no
    more than half of the votes."""
    v = _denoise(votes)
    total = v.sum(axis=1, keepdims=True)
    picked = np.where(v >= threshold * total, v, 0)
    kept = picked.sum(axis=1) > 0.5 * total[:, 0]
    return _keep(kept, picked)


def training_targets(votes, mode):
    """(N, 8) float32 targets for a label mode; all-zero rows are dropped faces.
    majority: one-hot; probability and crossentropy: the vote distribution
    (probability draws a one-hot label from it each time a face is drawn);
    multitarget: the classes the multi-target loss may choose from."""
    if mode == "majority":
        return majority_targets(votes)
    if mode in ("probability", "crossentropy"):
        return distribution_targets(votes)
    if mode == "multitarget":
        return multitarget_targets(votes)
    raise ValueError(f"unknown label mode {mode!r}; expected one of {', '.join(LABEL_MODES)}")


def vote_shares(votes):
    """(N, 8) share of each emotion among a face's emotion votes (unknown
    and not-a-face left out), in this project's class order; zero rows where
    no one named an emotion. What a calibrated model's probabilities should
    match: the negative log-likelihood against these is reported beside
    accuracy."""
    emotions = np.zeros((len(votes), NUM_CLASSES), np.float32)
    emotions[:, list(COLUMN_CLASS[:8])] = votes[:, :8]
    sums = emotions.sum(axis=1, keepdims=True)
    return np.divide(emotions, sums, out=np.zeros_like(emotions), where=sums > 0)


def part_rows(data, labels, part):
    """The rows FER+ scores of one part of fer2013.csv: 'Training',
    'PublicTest' (the validation set, as in FER+'s paper), 'PrivateTest'
    (FER+'s test set, held out) or 'all', keeping the faces with a label
    (labels >= 0: majority_labels, or a label mode's argmax with its dropped
    faces at -1). The one place these rules live: training and confusion.py
    both call it."""
    rows = np.arange(len(data)) if part == "all" else np.flatnonzero(data.usage == USAGES.index(part))
    return rows[labels[rows] >= 0]


def majority_labels(votes):
    """(N,) int8 majority label in this project's class order, -1 where FER+
    keeps none: the labels validation and test are scored against."""
    targets = majority_targets(votes)
    labels = np.argmax(targets, axis=1).astype(np.int8)
    labels[targets.sum(axis=1) == 0] = -1
    return labels
