"""The tf.data pipeline of training and evaluation: uint8 faces in memory,
cast, augmented and labelled per batch on their way to the model."""
import numpy as np

from ferkit.data import fer2013
from ferkit.train.augment import mixup, random_affine, random_erase, random_photometric
from ferkit.data.fer2013 import NUM_CLASSES


def make_dataset(data, batch_size, shuffle=False, augment=None, seed=0, erase=None, mixup_alpha=None,
                 num_classes=NUM_CLASSES, sample_targets=False, balanced=False, photometric=None, recipe=None):
    """tf.data pipeline. Images stay uint8 (66 MB for all of FER2013's training
    set); each batch is cast to float32 and augmented on its way to the model.
    Labels become one-hot so that label smoothing works; where data has
    soft targets (FER+) those are the labels, and sample_targets draws a
    one-hot label from them afresh each time a face is drawn (FER+'s
    probability mode). balanced draws an epoch of len(data) faces with each
    class (by its label) equally likely, each class's faces reshuffled as
    they run out. recipe: a training run's recipes.Recipe, whole: its
    augmentation, erasing, mixup, photometric changes and balanced sampling
    (the separate keywords are for evaluation and tests)."""
    import tensorflow as tf

    if recipe is not None:
        augment, erase, mixup_alpha, photometric = recipe.augment, recipe.erase, recipe.mixup, recipe.photometric
        balanced = recipe.balance == "sample"

    labels = data.targets.astype(np.float32) if data.targets is not None else data.labels.astype(np.int32)
    images = fer2013.as_model_input(data.images)
    if balanced:
        parts = []
        for c in np.unique(data.labels):
            mine = np.flatnonzero(data.labels == c)
            part = tf.data.Dataset.from_tensor_slices((images[mine], labels[mine]))
            parts.append(part.shuffle(len(mine), seed=seed + int(c), reshuffle_each_iteration=True).repeat())
        ds = tf.data.Dataset.sample_from_datasets(parts, seed=seed).take(len(data))
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    counter = tf.data.Dataset.counter()  # A fresh augmentation seed per batch.

    def to_model_input(x, y, step=None):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = random_affine(x, tf.stack([tf.cast(seed, tf.int64), step]), augment)
        if photometric is not None:
            x = random_photometric(x, tf.stack([tf.cast(seed, tf.int64) + 4, step]), photometric)
        if erase is not None:
            # A seed of its own (offset by one) so boxes do not track the affine.
            x = random_erase(x, tf.stack([tf.cast(seed, tf.int64) + 1, step]), erase)
        if data.targets is None:
            y = tf.one_hot(y, num_classes)
        elif sample_targets:
            draw = tf.random.stateless_categorical(tf.math.log(y), 1, tf.stack([tf.cast(seed, tf.int64) + 3, step]))
            y = tf.one_hot(draw[:, 0], num_classes)
        if mixup_alpha is not None:
            x, y = mixup(x, y, tf.stack([tf.cast(seed, tf.int64) + 2, step]), mixup_alpha)
        return x, y

    if augment is not None or erase is not None or mixup_alpha is not None or sample_targets or photometric is not None:
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda xy, step: to_model_input(*xy, step), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        ds = ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
