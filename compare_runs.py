"""Compare training runs: their per-epoch logs in one figure and a table.

    python compare_runs.py runs/fast50/cnn.log.csv runs/fast50_f32/cnn.log.csv --labels bfloat16 float32 --out report/parity_fast.png

Reads the per-epoch CSV logs train_cnn.py and train_dnn.py write (OUT.log.csv)
and prints, for each run, its best validation accuracy (and epoch), the
validation accuracy of its last epoch and its minutes of training. The last
epoch is the fairer comparison for runs of one schedule: the best of many
noisy readings flatters whichever run swings the most.
"""
import os

from ferkit.programs import cli
from ferkit.train.runlog import best_row, read_run


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("logs", nargs="+", help="per-epoch CSV logs (train_cnn.py's OUT.log.csv)")
    p.add_argument("--labels", nargs="+", default=None, help="one name per log (default: the logs' folder names)")
    p.add_argument("--out", default="report/runs.png", help="figure to write")
    p.add_argument("--title", default="accuracy per epoch", help="figure title")
    args = p.parse_args(argv)
    if args.labels is None:
        args.labels = [os.path.basename(os.path.dirname(os.path.abspath(path))) for path in args.logs]
    if len(args.labels) != len(args.logs):
        raise cli.UsageError(f"--labels: {len(args.labels)} names for {len(args.logs)} logs")
    return args


def summarize(rows):
    best = best_row(rows)
    return dict(epochs=len(rows), best=best["val_accuracy"], best_epoch=int(best["epoch"]),
                last=rows[-1]["val_accuracy"], minutes=sum(r["seconds"] for r in rows) / 60)


def plot_runs(runs, path, title):
    from ferkit.train.figures import plt, save

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, rows in runs:
        epochs = [r["epoch"] for r in rows]
        line, = ax.plot(epochs, [r["val_accuracy"] for r in rows], label=f"{label}, validation")
        ax.plot(epochs, [r["accuracy"] for r in rows], ls="--", lw=1, color=line.get_color(),
                label=f"{label}, training (augmented)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    runs = [(label, read_run(path)) for label, path in zip(args.labels, args.logs)]
    width = max(len(label) for label, _ in runs)
    print(f"{'run':<{width}}  epochs  best validation (epoch)  last epoch  minutes")
    for label, rows in runs:
        s = summarize(rows)
        print(f"{label:<{width}}  {s['epochs']:>6}  {s['best']:.4f} ({s['best_epoch']:>3}){'':>9}  "
              f"{s['last']:.4f}{'':>4}  {s['minutes']:7.1f}")
    plot_runs(runs, args.out, args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    cli.run(main)
