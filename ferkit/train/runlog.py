"""The per-epoch training log (one CSV row an epoch): writing it, reading it
back (for resume, the curves and compare_runs.py), the best epoch, and the
estimate of the time a run still takes. No TensorFlow import."""
import csv
import math
import os

from ferkit.errors import DataError
from ferkit.files import atomic_output

LOG_FIELDS = ("epoch", "loss", "accuracy", "mean_recall", "val_loss", "val_accuracy", "val_mean_recall", "val_ece",
              "lr", "seconds", "saved", "minutes_left")


def time_left(rows, epochs):
    """{'minutes_left': ...} from the epochs' seconds so far: the mean of the
    last five, leaving out the first epoch (it includes tracing) once there
    are others, times the epochs still to train."""
    seconds = [float(r["seconds"]) for r in rows]
    recent = (seconds[1:] if len(seconds) > 1 else seconds)[-5:]
    left = max(0, epochs - int(rows[-1]["epoch"]))
    return {"minutes_left": round(left * sum(recent) / len(recent) / 60, 1)}


def progress_line(row, epochs):
    """One line per epoch that says how long the run still takes; after the
    first, the estimated total too, so a slow machine shows early."""
    epoch, minutes = int(row["epoch"]), float(row["seconds"]) / 60
    balance = (f", mean class recall {float(row['val_mean_recall']):.4f}, ECE {float(row['val_ece']):.4f}"
               if "val_mean_recall" in row and "val_ece" in row else "")
    line = (f"epoch {epoch}/{epochs}: {minutes:.2f} min, val_accuracy {row.get('val_accuracy', float('nan')):.4f}{balance}"
            f"{' (best, saved)' if row['saved'] else ''}; about {row['minutes_left']:.0f} min left")
    if epoch == 1 and epochs:
        line += f" (estimated total {minutes * epochs:.0f} min)"
    return line


def read_log(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(path, rows):
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def best_row(rows, column="val_accuracy"):
    """The epoch with the highest value in column (the first, on a tie): with
    the column training selected by, the one it saved as its model."""
    return max(rows, key=lambda r: float(r[column]))


# The columns compare_runs.py needs from any log.
NEEDED = ("epoch", "accuracy", "val_accuracy", "seconds")


def read_run(path):
    """The log's rows as dicts of floats; DataError names the file and line of any problem."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(path, f"not a training log: it lacks the column(s) {', '.join(missing)}")
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    values = {c: float(row[c]) for c in NEEDED}
                except (TypeError, ValueError):
                    raise DataError(path, f"{', '.join(NEEDED)} must be numbers", line) from None
                if not all(math.isfinite(v) for v in values.values()):
                    raise DataError(path, "a value is not finite", line)
                rows.append(values)
    except OSError as e:
        raise DataError(path, e.strerror or str(e)) from None
    except UnicodeDecodeError:
        raise DataError(path, "not a text file") from None
    if not rows:
        raise DataError(path, "has no epochs")
    return rows
