"""The callbacks of a training run: the NaN guard, resume from the last
finished epoch, the per-epoch log and the best-model checkpoint."""
import math
import time

from ferkit.nets.card import with_epoch
from ferkit.errors import TrainingStopped
from ferkit.train.optim import current_lr
from ferkit.train.runlog import progress_line, read_log, time_left, write_log


def make_callbacks(model, inference_model, out, log_path, backup_dir, select="accuracy", card=None):
    """Keras callbacks: resume (BackupAndRestore), log, best model, NaN guard.
    card: the run's model card (card.training_card); the saved model carries
    it with the epoch kept and its validation scores."""
    import keras

    from ferkit.nets.models import save_model

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        # Checked once an epoch (a per-batch check costs ~6% of throughput, as
        # it syncs every step). Raising, first in the callback list, ends fit
        # before any other callback sees the epoch: resume and the best model
        # both keep the last good state.
        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingStopped(f"loss became {float(loss)} in epoch {epoch + 1}")

    class EpochLog(keras.callbacks.Callback):
        """Per-epoch CSV; on resume, rows of epochs that will be trained again
        are dropped, so no epoch appears twice. Rewritten atomically."""

        def on_train_begin(self, logs=None):
            first = getattr(self.model, "_initial_epoch", None) or 0
            self.rows = [r for r in read_log(log_path) if int(r["epoch"]) <= first] if first else []
            self.best = max((float(r[monitor]) for r in self.rows), default=-1.0)
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "lr": current_lr(self.model.optimizer),
                   "seconds": round(time.time() - self.started, 1)}
            row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
            if row.get(monitor, -1.0) > self.best:
                self.best = row[monitor]
                inference_model.set_weights(self.model.get_weights())
                save_model(inference_model, out, card=with_epoch(card, row) if card is not None else None)
                row["saved"] = 1
            else:
                row["saved"] = 0
            row.update(time_left(self.rows + [row], self.params.get("epochs") or int(row["epoch"])))
            self.rows.append(row)
            write_log(log_path, self.rows)
            print(progress_line(row, self.params.get("epochs")), flush=True)

    monitor = "val_" + select
    restore = keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=True, double_checkpoint=True)
    return [StopOnNonFiniteLoss(), restore, EpochLog()]
