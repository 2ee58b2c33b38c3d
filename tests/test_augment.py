"""The augmentation ops of the training pipeline (affine, random erasing, mixup):
what they change and what they keep."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ferkit.train import augment
from ferkit.programs import cli
from ferkit.train import recipes
from ferkit.programs import train_flags
from ferkit.train.optim import make_optimizer
from ferkit.train.pipeline import make_dataset


def faces(n=256, seed=0):
    return tf.constant(np.random.RandomState(seed).randint(0, 256, (n, 48, 48, 1)).astype("float32"))


def test_affine_without_rotation_shift_or_zoom_only_mirrors():
    x = faces(64)
    y = augment.random_affine(x, tf.constant([0, 1], tf.int64), (0, 0.0, 0.0)).numpy()
    same = np.all(np.isclose(y, x.numpy(), atol=1e-3), axis=(1, 2, 3))
    mirrored = np.all(np.isclose(y, x.numpy()[:, :, ::-1], atol=1e-3), axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 0.2 < mirrored.mean() < 0.8  # A random flip, about half the time.


def test_random_erase_fills_one_box_per_chosen_face_with_its_mean():
    x = faces()
    y = augment.random_erase(x, tf.constant([0, 3], tf.int64), (0.5, 0.25)).numpy()
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
    a = augment.random_erase(x, tf.constant([7, 0], tf.int64), (1.0, 0.25)).numpy()
    b = augment.random_erase(x, tf.constant([7, 0], tf.int64), (1.0, 0.25)).numpy()
    c = augment.random_erase(x, tf.constant([7, 1], tf.int64), (1.0, 0.25)).numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    off = augment.random_erase(x, tf.constant([7, 0], tf.int64), (0.0, 0.25)).numpy()
    assert np.array_equal(off, x.numpy())


def test_no_augment_turns_off_the_erasing_and_mixup_given_with_it():
    assert all("erase" in recipe and "mixup" in recipe for recipe in recipes.PRESETS.values())
    argv = ["--no-augment", "--erase", "0.5", "0.25", "--mixup", "0.2"]
    args = train_flags.build_parser("t", "cnn", list(recipes.PRESETS), "long").parse_args(argv)
    recipe = recipes.settings_from(args)
    assert recipe["augment"] is None and recipe["erase"] is None and recipe["mixup"] is None


def test_erase_flag_overrides_the_preset_and_zero_turns_it_off():
    parse = lambda preset, *argv: recipes.settings_from(
        train_flags.build_parser("t", "cnn", list(recipes.PRESETS), preset).parse_args(list(argv)))
    assert parse("fast")["erase"] is None
    assert parse("fast", "--erase", "0.5", "0.25")["erase"] == (0.5, 0.25)
    assert parse("long", "--erase", "0", "0")["erase"] is None
    assert parse("fast", "--erase", "0.5", "0.25", "--no-augment")["erase"] is None
    for bad in (["1.5", "0.25"], ["0.5", "0.01"], ["0.5", "1"], ["-0.1", "0.2"]):
        with pytest.raises(cli.UsageError, match="--erase"):
            parse("fast", "--erase", *bad)


def random_dataset(n, labels):
    from ferkit.data import fer2013

    images = np.random.RandomState(0).randint(0, 256, (n, 48, 48, 1)).astype(np.uint8)
    return fer2013.Dataset(images=images, labels=np.asarray(labels, np.int8), ids=np.arange(n), usage=None)


def one_hot_labels(n, seed=0):
    return tf.one_hot(np.random.RandomState(seed).randint(0, 7, n), 7)


def test_mixup_blends_each_face_and_its_label_with_the_same_weight():
    x, y = faces(64), one_hot_labels(64)
    mx, my = augment.mixup(x, y, tf.constant([0, 5], tf.int64), 0.4)
    x, y, mx, my = x.numpy(), y.numpy(), mx.numpy(), my.numpy()
    partner_x, partner_y = x[::-1], y[::-1]
    assert np.allclose(my.sum(axis=1), 1.0, atol=1e-6)  # Still a distribution over the 7 classes.
    weights = []
    for i in range(len(x)):
        if np.array_equal(y[i], partner_y[i]):
            continue  # Same class: the label does not reveal the weight.
        w = my[i, y[i].argmax()]  # The face's own class gets weight w from it.
        assert 0.0 <= w <= 1.0
        assert np.allclose(mx[i], w * x[i] + (1 - w) * partner_x[i], atol=1e-3)
        weights.append(w)
    weights = np.array(weights)
    # Beta(0.4, 0.4) puts its mass near 0 and 1, but not all of it.
    assert ((weights > 0.05) & (weights < 0.95)).any() and (np.abs(weights - 0.5) > 0.3).mean() > 0.3


def test_mixup_is_reproducible_per_seed():
    x, y = faces(16), one_hot_labels(16)
    a = augment.mixup(x, y, tf.constant([1, 0], tf.int64), 0.2)[0].numpy()
    b = augment.mixup(x, y, tf.constant([1, 0], tf.int64), 0.2)[0].numpy()
    c = augment.mixup(x, y, tf.constant([1, 1], tf.int64), 0.2)[0].numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_mixup_flag_overrides_the_preset_and_zero_or_no_augment_turn_it_off():
    parse = lambda *argv: recipes.settings_from(
        train_flags.build_parser("t", "cnn", list(recipes.PRESETS), "fast").parse_args(list(argv)))
    assert parse()["mixup"] is None
    assert parse("--mixup", "0.2")["mixup"] == 0.2
    assert parse("--mixup", "0")["mixup"] is None
    assert parse("--mixup", "0.2", "--no-augment")["mixup"] is None
    with pytest.raises(cli.UsageError, match="--mixup"):
        parse("--mixup", "-1")


def test_mixup_dataset_yields_soft_labels_and_plain_validation_does_not():
    data = random_dataset(40, labels=np.random.RandomState(1).randint(0, 7, 40))
    _, y = next(iter(make_dataset(data, 40, shuffle=True, seed=0, mixup_alpha=1.0)))
    assert np.allclose(y.numpy().sum(axis=1), 1.0, atol=1e-6)
    assert (y.numpy().max(axis=1) < 0.99).mean() > 0.5  # Beta(1, 1): most labels are mixed.
    _, y = next(iter(make_dataset(data, 40)))
    assert set(np.unique(y.numpy())) == {0.0, 1.0}


def test_repeated_training_set_shows_every_face_once_per_epoch_in_a_new_order():
    # Training runs one iterator over make_dataset(...).repeat() with
    # steps_per_epoch = ceil(faces / batch): each epoch must still be exactly
    # one pass (the short last batch included), reshuffled.
    n, batch = 37, 8
    data = random_dataset(n, labels=np.arange(n) % 7)
    data.images[:, 0, 0, 0] = np.arange(n)  # Mark each face; flips and shifts leave no corner intact, so no augment.
    steps = -(-n // batch)
    batches = list(make_dataset(data, batch, shuffle=True, seed=0).repeat().take(2 * steps))
    epochs = [np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in batches[e * steps:(e + 1) * steps]]) for e in range(2)]
    for marks in epochs:
        assert sorted(marks.astype(int).tolist()) == list(range(n))
    assert not np.array_equal(epochs[0], epochs[1])


def test_optimizer_and_weight_decay_flags_override_the_preset():
    parse = lambda *argv: recipes.settings_from(
        train_flags.build_parser("t", "cnn", list(recipes.PRESETS), "fast").parse_args(list(argv)))
    assert (parse()["optimizer"], parse()["weight_decay"]) == ("adamw", 0.05)
    recipe = parse("--optimizer", "sgd", "--lr", "0.01", "--weight-decay", "0.005")
    optimizer = make_optimizer(recipe, steps_per_epoch=10)
    assert type(optimizer).__name__ == "SGD" and optimizer.nesterov and optimizer.momentum == 0.9
    assert optimizer.weight_decay == pytest.approx(0.005)
    assert make_optimizer(parse("--weight-decay", "0"), 10).weight_decay == 0.0
    with pytest.raises(cli.UsageError, match="--weight-decay"):
        parse("--weight-decay", "-0.1")
    with pytest.raises(SystemExit):
        parse("--optimizer", "rmsprop")


def test_photometric_changes_about_its_share_of_faces_within_the_grey_range():
    x = tf.constant(np.random.RandomState(0).randint(40, 216, (512, 48, 48, 1)).astype("float32"))
    seed = tf.constant([0, 5], tf.int64)
    y = augment.random_photometric(x, seed, 0.2).numpy()
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 255
    changed = ~np.all(np.isclose(y, x.numpy()), axis=(1, 2, 3))
    # Five changes, each on 20% of faces: 1 - 0.8^5 = 67% of faces get at least one.
    assert 0.57 < changed.mean() < 0.77
    np.testing.assert_array_equal(y, augment.random_photometric(x, seed, 0.2).numpy())
    np.testing.assert_array_equal(augment.random_photometric(x, seed, 0.0).numpy(), x.numpy())


def test_photometric_flag_overrides_the_preset_and_is_checked():
    parse = lambda preset, *argv: recipes.settings_from(
        train_flags.build_parser("t", "cnn", list(recipes.PRESETS), preset).parse_args(list(argv)))
    assert parse("fast")["photometric"] is None and parse("robust")["photometric"] == 0.2
    assert parse("fast", "--photometric", "0.5")["photometric"] == 0.5
    assert parse("robust", "--photometric", "0")["photometric"] is None
    assert parse("robust", "--no-augment")["photometric"] is None
    with pytest.raises(cli.UsageError, match="--photometric 1.5: a probability in"):
        parse("fast", "--photometric", "1.5")
