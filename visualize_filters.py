"""What the CNN's filters respond to: activation maps and gradient ascent.

    python visualize_filters.py --model models/cnn.keras --data data/train.csv --out-dir runs/figures/

Writes filter_activations.png (every filter of --layer on one validation face,
most active first, beside the face) and filter_patterns.png (for each filter
of --pattern-layer, up to 64, the input that maximizes its mean activation).
"""
import os

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013
from ferkit.data.fer2013 import CLASS_NAMES
from ferkit.infer.inference import load_for_script


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--model", default=cli.RELEASED_MODEL, help="saved .keras model (a CNN)")
    p.add_argument("--data", default="data/train.csv", help="labelled CSV; faces come from its validation split")
    p.add_argument("--index", type=int, default=0, help="which validation face to show")
    p.add_argument("--layer", default="conv1_2", help="conv layer whose activation maps are shown (the second)")
    p.add_argument("--pattern-layer", default=None, help="conv layer for gradient ascent (default: --layer)")
    p.add_argument("--filters", type=int, default=64, help="at most this many filters in the pattern grid")
    p.add_argument("--steps", type=int, default=80, help="gradient-ascent steps")
    cli.add_split_flags(p)
    p.add_argument("--seed", type=int, default=fer2013.SPLIT_SEED, help="seed of the gradient ascent's starting noise")
    p.add_argument("--out-dir", default="runs/figures", help="folder for the figures (the report's: --out-dir report)")
    # Gradients for figures: float32 by default (bfloat16 gradients are coarse, and these are cheap).
    cli.add_precision_flag(p, default="float32")
    return p.parse_args(argv)


def conv_layer(model, name):
    """The named layer's output, after its activation where one follows it."""
    import keras

    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if name not in convs:
        raise cli.UsageError(f"--layer {name!r} is not a conv layer of this model; valid: {', '.join(convs) or 'none'}")
    names = [layer.name for layer in model.layers]
    following = model.layers[names.index(name) + 1] if names.index(name) + 1 < len(names) else None
    chosen = following if following is not None and following.name == f"{name}_act" else model.get_layer(name)
    return keras.Model(model.inputs, chosen.output)


def plot_activations(face, label, maps, layer_name, path):
    from ferkit.train.figures import plt, save

    order = np.argsort(maps.mean(axis=(0, 1)))[::-1]  # Most active first.
    n = maps.shape[-1]
    cols = 8 if n <= 32 else 16
    rows = int(np.ceil(n / cols))
    fig = plt.figure(figsize=(2.2 + cols * 1.05, max(2.6, rows * 1.15 + 0.6)))
    face_ax = fig.add_axes([0.01, 0.25, 2.0 / (2.2 + cols * 1.05), 0.55])
    face_ax.imshow(face[..., 0], cmap="gray", vmin=0, vmax=255)
    face_ax.set_title(f"input face\n({CLASS_NAMES[label]})", fontsize=10)
    face_ax.axis("off")
    left = 2.2 / (2.2 + cols * 1.05)
    grid = fig.add_gridspec(rows, cols, left=left, right=0.995, top=0.86, bottom=0.02, wspace=0.08, hspace=0.3)
    for k, f in enumerate(order):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.imshow(maps[..., f], cmap="viridis")
        ax.set_title(f"#{f}", fontsize=7, pad=1)
        ax.axis("off")
    fig.suptitle(f"Activation maps of {layer_name} ({n} filters, most active first)", fontsize=12)
    save(fig, path)


def gradient_ascent(extractor, filters, steps, seed=0):
    """Images (filters, 48, 48) that maximize each filter's mean activation:
    one batch, image i ascending filter i, with the gradient normalized per
    image and a random jitter each step so the patterns are not pixel noise."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = tf.Variable(128 + 10 * rng.standard_normal((filters, 48, 48, 1)).astype("float32"))
    pick = tf.one_hot(tf.range(filters), extractor.output_shape[-1])  # (filters, channels)

    @tf.function
    def step(shift):
        with tf.GradientTape() as tape:
            shifted = tf.roll(images, shift, axis=(1, 2))
            act = extractor(shifted, training=False)[:, 2:-2, 2:-2, :]  # Borders are padding artefacts.
            score = tf.reduce_sum(tf.reduce_mean(act, axis=(1, 2)) * pick)
        grad = tape.gradient(score, images)
        grad /= tf.math.reduce_std(grad, axis=(1, 2, 3), keepdims=True) + 1e-8
        images.assign(tf.clip_by_value(images + 2.0 * grad, 0.0, 255.0))

    for _ in range(steps):
        step(tf.constant(rng.integers(-2, 3, size=2), tf.int32))
    return images.numpy()[..., 0]


def plot_patterns(patterns, layer_name, path):
    from ferkit.train.figures import plt, save

    n = len(patterns)
    cols = 8
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45 + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            p = patterns[k]
            shown = (p - p.mean()) / (p.std() + 1e-6)  # Contrast-stretch each pattern.
            ax.imshow(np.clip(0.5 + 0.15 * shown, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"#{k}", fontsize=8, pad=2)
    fig.suptitle(f"Inputs that maximize each filter of {layer_name} (gradient ascent)", fontsize=12)
    fig.tight_layout()
    save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    cli.require_keras_model(args.model, "gradient ascent")
    data, val_idx = fer2013.validation_faces(args.data, args.val_split, args.split_seed, args.limit)
    if not 0 <= args.index < len(val_idx):
        raise cli.UsageError(f"--index {args.index} is out of range: the validation split has {len(val_idx)} faces (0-{len(val_idx) - 1})")
    face, label = data.images[val_idx[args.index]], int(data.labels[val_idx[args.index]])
    model = load_for_script(args.model, args.precision)
    extractor = conv_layer(model, args.layer)
    pattern_extractor = conv_layer(model, args.pattern_layer or args.layer)
    maps = extractor(face[None].astype("float32"), training=False).numpy()[0]
    activations_png = os.path.join(args.out_dir, "filter_activations.png")
    plot_activations(face, label, maps, args.layer, activations_png)
    filters = min(args.filters, pattern_extractor.output_shape[-1])
    patterns = gradient_ascent(pattern_extractor, filters, args.steps, seed=args.seed)
    patterns_png = os.path.join(args.out_dir, "filter_patterns.png")
    plot_patterns(patterns, args.pattern_layer or args.layer, patterns_png)
    print(f"wrote {activations_png} and {patterns_png}")


if __name__ == "__main__":
    cli.run(main)
