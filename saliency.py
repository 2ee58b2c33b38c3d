"""Where the CNN looks: saliency maps and Grad-CAM for validation faces.

    python saliency.py --model models/cnn.keras --data data/train.csv --out-dir runs/figures/

For --per-class validation faces of each class, shows the face, its saliency
map (gradient of the predicted class's score with respect to the pixels;
--smoothgrad for SmoothGrad) and Grad-CAM on the last conv layer, titled with the
true and predicted labels. Uses tf-keras-vis, with the softmax replaced by a
linear output so the gradients are those of the class score.
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
    p.add_argument("--per-class", type=int, default=2, help="faces per class")
    p.add_argument("--smoothgrad", action="store_true", help="SmoothGrad: average the saliency over 20 noisy copies")
    p.add_argument("--layer", default=None, help="conv layer for Grad-CAM (default: the last)")
    cli.add_split_flags(p)
    p.add_argument("--out-dir", default="runs/figures", help="folder for saliency.png (the report's: --out-dir report)")
    # Gradients for figures: float32 by default (bfloat16 gradients are coarse, and these are cheap).
    cli.add_precision_flag(p, default="float32")
    return p.parse_args(argv)


def last_conv_output_name(model, name=None):
    """The layer Grad-CAM reads: the activation after the named (or last) conv."""
    import keras

    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise cli.UsageError("this model has no conv layer, so Grad-CAM does not apply (use a CNN)")
    name = name or convs[-1]
    if name not in convs:
        raise cli.UsageError(f"--layer {name!r} is not a conv layer of this model; valid: {', '.join(convs)}")
    names = [layer.name for layer in model.layers]
    return f"{name}_act" if f"{name}_act" in names else name


def explain(model, images, classes, smooth=False, layer=None):
    """(saliency, gradcam): each (N, 48, 48) in [0, 1], for the given classes."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = images.astype("float32")
    score = CategoricalScore([int(c) for c in classes])
    saliency = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
    options = dict(smooth_samples=20, smooth_noise=0.15) if smooth else {}
    saliency_maps = saliency(score, x, **options)
    gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    cams = gradcam(score, x, penultimate_layer=last_conv_output_name(model, layer))
    return np.asarray(saliency_maps), np.asarray(cams)


def pick_faces(labels, per_class):
    """Indices of the first per_class faces of each class (classes in order)."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASS_NAMES))])


def plot(images, labels, predicted, saliency_maps, cams, title, path, saliency_name="saliency", class_names=CLASS_NAMES):
    """True labels are the CSV's (FER2013's classes); predictions are named by
    class_names, the model's own (eight for a FER+ model)."""
    from ferkit.train.figures import plt, save

    n = len(images)
    per_row = 2
    rows = int(np.ceil(n / per_row))
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(3 * per_row * 1.6, rows * 1.85 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        face_ax, sal_ax, cam_ax = axes[k // per_row, 3 * (k % per_row) : 3 * (k % per_row) + 3]
        face = images[k, ..., 0]
        face_ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        mark = "" if CLASS_NAMES[labels[k]] == class_names[predicted[k]] else "  (wrong)"
        face_ax.set_title(f"true {CLASS_NAMES[labels[k]]}\npred {class_names[predicted[k]]}{mark}", fontsize=8)
        sal_ax.imshow(saliency_maps[k], cmap="inferno", vmin=0, vmax=1)
        sal_ax.set_title(saliency_name, fontsize=8)
        cam_ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        cam_ax.imshow(cams[k], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        cam_ax.set_title("Grad-CAM", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    cli.require_keras_model(args.model, "saliency and Grad-CAM")
    data, val_idx = fer2013.validation_faces(args.data, args.val_split, args.split_seed, args.limit)
    chosen = val_idx[pick_faces(data.labels[val_idx], args.per_class)]
    if len(chosen) == 0:
        raise fer2013.DataError(args.data, "its validation split holds no faces")
    images, labels = data.images[chosen], data.labels[chosen].astype(int)
    from ferkit.infer.inference import predict_proba

    model = load_for_script(args.model, args.precision)
    predicted = predict_proba([model], images).argmax(axis=1)
    saliency_maps, cams = explain(model, images, predicted, smooth=args.smoothgrad, layer=args.layer)
    method = "SmoothGrad" if args.smoothgrad else "saliency (vanilla gradient)"
    title = f"{os.path.basename(args.model)}: {method} and Grad-CAM for the predicted class"
    path = os.path.join(args.out_dir, "saliency.png")
    plot(images, labels, predicted, saliency_maps, cams, title, path, "SmoothGrad" if args.smoothgrad else "saliency",
         model.class_names)
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.run(main)
