"""The augmentation ops of the training pipeline: what they change and what they keep."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import training


def faces(n=256, seed=0):
    return tf.constant(np.random.RandomState(seed).randint(0, 256, (n, 48, 48, 1)).astype("float32"))


def test_affine_without_rotation_shift_or_zoom_only_mirrors():
    x = faces(64)
    y = training.random_affine(x, tf.constant([0, 1], tf.int64), (0, 0.0, 0.0)).numpy()
    same = np.all(np.isclose(y, x.numpy(), atol=1e-3), axis=(1, 2, 3))
    mirrored = np.all(np.isclose(y, x.numpy()[:, :, ::-1], atol=1e-3), axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 0.2 < mirrored.mean() < 0.8  # A random flip, about half the time.


def test_random_erase_fills_one_box_per_chosen_face_with_its_mean():
    x = faces()
    y = training.random_erase(x, tf.constant([0, 3], tf.int64), (0.5, 0.25)).numpy()
    x = x.numpy()
    changed = y != x
    erased = changed.reshape(len(x), -1).any(axis=1)
    assert 0.35 < erased.mean() < 0.65  # Probability 0.5.
    for i in np.flatnonzero(erased):
        rows, cols = np.nonzero(changed[i, :, :, 0])
        top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        box = y[i, top:bottom + 1, left:right + 1, 0]
        assert np.allclose(box, x[i].mean(), atol=1e-3)  # One solid box of the face's mean grey.
        area = box.size / (48 * 48)
        assert area <= 0.25 + 0.01  # Rounding the sides may add a row or column.


def test_random_erase_is_reproducible_per_seed_and_off_at_probability_zero():
    x = faces(32)
    a = training.random_erase(x, tf.constant([7, 0], tf.int64), (1.0, 0.25)).numpy()
    b = training.random_erase(x, tf.constant([7, 0], tf.int64), (1.0, 0.25)).numpy()
    c = training.random_erase(x, tf.constant([7, 1], tf.int64), (1.0, 0.25)).numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    off = training.random_erase(x, tf.constant([7, 0], tf.int64), (0.0, 0.25)).numpy()
    assert np.array_equal(off, x.numpy())


def test_long_preset_erases_and_no_augment_turns_erasing_off_too():
    assert training.PRESETS["long"]["erase"] is not None
    assert all("erase" in recipe for recipe in training.PRESETS.values())
    args = training.build_parser("t", "cnn", list(training.PRESETS), "long").parse_args(["--no-augment"])
    recipe = training.settings_from(args)
    assert recipe["augment"] is None and recipe["erase"] is None
