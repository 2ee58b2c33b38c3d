"""Data augmentation on batches of faces, (B, 48, 48, 1) float32 inside the
tf.data pipeline (see training.make_dataset): one random projective
transform (flip, rotation, shift, zoom), random erasing, and mixup. Each
takes a stateless seed, so a batch's augmentation is reproducible.
"""
import math


def random_affine(images, seed, augment):
    """Random flip, rotation, shift and zoom of a batch (B, 48, 48, 1) float32,
    composed into one projective transform per image: one resampling pass."""
    import tensorflow as tf

    max_rotation, max_shift, max_zoom = augment
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    uniform = lambda i, bound: tf.random.stateless_uniform([batch], seeds[i], -bound, bound)
    angle = uniform(0, max_rotation * math.pi / 180)
    scale = 1.0 + uniform(1, max_zoom)  # >1 zooms out (the face gets smaller).
    tx, ty = uniform(2, max_shift * size), uniform(3, max_shift * size)
    flip = tf.where(tf.random.stateless_uniform([batch], seeds[4]) < 0.5, -1.0, 1.0)
    # Output pixel p samples the input at A (p - c - t) + c.
    c = (size - 1) / 2
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    a0, a1, b0, b1 = flip * cos, -flip * sin, sin, cos
    a2 = c - a0 * (c + tx) - a1 * (c + ty)
    b2 = c - b0 * (c + tx) - b1 * (c + ty)
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST",
    )


def random_erase(images, seed, erase):
    """Random erasing (cutout) of a batch (B, H, W, 1) float32: with the given
    probability, one box of 2% up to max_area of the image, aspect ratio 0.3-3.3,
    is filled with that image's mean, so the model cannot lean on any one part
    of the face (an eye, the mouth) alone."""
    import tensorflow as tf

    probability, max_area = erase
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    uniform = lambda i, low, high: tf.random.stateless_uniform([batch], seeds[i], low, high)
    area = uniform(0, 0.02, max_area) * h_f * w_f
    aspect = tf.exp(uniform(1, math.log(0.3), math.log(1 / 0.3)))
    box_h = tf.clip_by_value(tf.round(tf.sqrt(area * aspect)), 1.0, h_f)
    box_w = tf.clip_by_value(tf.round(tf.sqrt(area / aspect)), 1.0, w_f)
    top = tf.floor(uniform(2, 0.0, 1.0) * (h_f - box_h + 1))
    left = tf.floor(uniform(3, 0.0, 1.0) * (w_f - box_w + 1))
    on = uniform(4, 0.0, 1.0) < probability
    rows = tf.range(h_f)[None, :]
    cols = tf.range(w_f)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None]
    fill = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.where(mask[..., None], fill, images)


def mixup(images, labels, seed, alpha):
    """Mixup of a batch: each face and its one-hot label are blended with
    those of its partner in the reversed batch (the batch is shuffled, so the
    partner is random), with a weight drawn from Beta(alpha, alpha) per face."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    # Beta(a, a) as G1 / (G1 + G2) with G1, G2 ~ Gamma(a). Both can underflow
    # to zero for a small alpha; the weight is then 0 and the face becomes its
    # partner, label and all, which is still a consistent pair.
    g1 = tf.random.stateless_gamma([batch], seeds[0], alpha)
    g2 = tf.random.stateless_gamma([batch], seeds[1], alpha)
    weight = tf.math.divide_no_nan(g1, g1 + g2)
    w = weight[:, None, None, None]
    mixed_images = w * images + (1 - w) * tf.reverse(images, [0])
    mixed_labels = weight[:, None] * labels + (1 - weight[:, None]) * tf.reverse(labels, [0])
    return mixed_images, mixed_labels


def random_photometric(images, seed, probability):
    """The picture-quality changes a face meets outside FER2013, each applied
    to a face with the given probability, on a batch (B, H, W, 1) float32 in
    [0, 255]: contrast scaled by 0.4-1.3 about the face's mean, gamma
    0.6-1.6, a brightness shift of up to 30 grey levels, a trip down to 16-40
    pixels and back (a small or blurred face), and grey noise of sigma up to
    10. What bench.py shifts measures, trained for."""
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 10)
    uniform = lambda i, low, high: tf.random.stateless_uniform([batch, 1, 1, 1], seeds[i], low, high)
    chosen = lambda i: uniform(i, 0.0, 1.0) < probability
    x = images
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = tf.where(chosen(0), mean + (x - mean) * uniform(1, 0.4, 1.3), x)
    gamma = tf.exp(uniform(2, math.log(0.6), math.log(1.6)))
    x = tf.clip_by_value(x, 0.0, 255.0)
    x = tf.where(chosen(3), 255.0 * tf.pow(x / 255.0, gamma), x)
    x = tf.where(chosen(4), x + uniform(5, -30.0, 30.0), x)
    # One small size per batch (resize takes one), applied to the chosen faces.
    side = tf.random.stateless_uniform([], seeds[6], 16, 41, dtype=tf.int32)
    small = tf.image.resize(tf.image.resize(x, [side, side], method="area"), [height, width], method="bilinear")
    x = tf.where(chosen(7), small, x)
    noise = tf.random.stateless_normal(shape, seeds[8]) * uniform(9, 0.0, 10.0)
    x = tf.where(chosen(9), x + noise, x)
    return tf.clip_by_value(x, 0.0, 255.0)
