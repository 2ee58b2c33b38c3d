"""Plotting shared by training and the report scripts. Every figure is written
atomically (a temporary file renamed into place) and closed after saving."""
import matplotlib

matplotlib.use("Agg")  # No display on training boxes.
import matplotlib.pyplot as plt  # noqa: E402

from ferkit.files import atomic_output  # noqa: E402


def save(fig, path, dpi=120):
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_training_curves(rows, path, title, select="accuracy"):
    """Loss and accuracy per epoch, training vs validation, from the log
    rows; with select="mean_recall", validation mean class recall beside
    them. The kept epoch (the best by select, as the run saved it) is marked
    and named in the title. Returns that epoch's row."""
    from ferkit.train.runlog import best_row

    epochs = [int(r["epoch"]) for r in rows]
    series = lambda key: [float(r[key]) for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((loss_ax, "loss", "loss"), (acc_ax, "accuracy", "accuracy")):
        ax.plot(epochs, series(key), label=f"training {label}")
        ax.plot(epochs, series(f"val_{key}"), label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    by_recall = select == "mean_recall"
    if by_recall:
        acc_ax.plot(epochs, series("val_mean_recall"), ls="--", label="validation mean class recall")
        acc_ax.set_ylabel("accuracy, mean class recall")
    kept = best_row(rows, f"val_{select}")
    acc_ax.axvline(int(kept["epoch"]), color="gray", ls=":", lw=1)
    what = "mean class recall" if by_recall else "accuracy"
    acc_ax.set_title(f"kept: epoch {kept['epoch']}, best validation {what} {float(kept[f'val_{select}']):.4f}")
    for ax in (loss_ax, acc_ax):
        ax.legend()
    loss_ax.set_title("loss (training loss includes label smoothing)")
    fig.suptitle(title)
    save(fig, path)
    return kept


def plot_timeline(tracks, title, target):
    """Each emotion's probability over time in a video, one panel per face
    track. tracks: [(panel title, records of one track)] as emotions.py
    groups them."""
    import numpy as np

    from ferkit.vision.drawing import COLOURS

    fig, axes = plt.subplots(len(tracks), 1, figsize=(10, 2.6 * len(tracks)), squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], tracks):
        times = [r["time"] for r in rows]
        for emotion in rows[0]["probabilities"]:
            ax.plot(times, [r["probabilities"][emotion] for r in rows], label=emotion,
                    color=np.array(COLOURS[emotion]) / 255)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=7, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.45))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, y=1.02)
    save(fig, target)
