"""tf.distribute strategies for training, and the loop multi-worker needs.

--strategy default      one device (TensorFlow's default strategy)
--strategy mirrored     MirroredStrategy over all visible GPUs (or the CPU)
--strategy multiworker  MultiWorkerMirroredStrategy from TF_CONFIG
--strategy auto         mirrored when more than one GPU is visible, else default

--batch-size is the batch of one replica: the global batch is it times the
number of replicas, and the peak learning rate is scaled by the same factor
(the linear scaling rule), so the per-epoch schedule stays the same.

Keras' model.fit fails under MultiWorkerMirroredStrategy ("Attempt to convert
a value (PerReplica ...)", keras-team/keras#20585), so multi-worker runs use
`fit_multiworker` below: a distributed train step (strategy.run with
tf.GradientTape and the model's Keras optimizer) that trains the compiled
model's own loss (balanced or not, any label mode), logs the validation
scores --select chooses by, and calls the same Keras callbacks (resume, log,
best model, NaN guard) as fit does.
"""
import json
import os
import sys
import tempfile

from ferkit.errors import UsageError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def make_strategy(name):
    import tensorflow as tf

    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All GPUs; on a machine without, every logical CPU device (one unless
        # configured otherwise, as the tests do with two).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise UsageError("--strategy multiworker needs TF_CONFIG (see report/README.md, section 10.7)")
    try:
        json.loads(config)["cluster"]["worker"]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"TF_CONFIG is not a cluster description: {config[:80]!r}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """Worker 0 (or a lone process) writes the model, the log and the figures."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0
                                                     and "chief" not in resolver.cluster_spec().as_dict())


def worker_paths(strategy, out, log_path, curves):
    """(out, log, curves, resume folder) for this worker: the real paths on the
    chief; on the others a scratch folder for the model and log (only the
    chief's are kept) and a resume folder of their own beside OUT, so that a
    rerun resumes every worker from the same epoch."""
    if is_chief(strategy):
        return out, log_path, curves, out + ".resume"
    scratch = tempfile.mkdtemp(prefix="fer-worker-")
    task = strategy.cluster_resolver.task_id
    return os.path.join(scratch, "model.keras"), os.path.join(scratch, "log.csv"), None, f"{out}.resume-worker{task}"


def fit_for(strategy, keras_fit):
    """The training loop for a strategy, called as loop(model, train_ds,
    val_ds, epochs, callbacks, global_batch, verbose): keras_fit (training.fit,
    Keras' fit over one iterator) for every strategy but multi-worker, where
    Keras' fit fails (keras-team/keras#20585) and fit_multiworker runs."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return lambda model, train_ds, val_ds, epochs, callbacks, global_batch, verbose: \
            fit_multiworker(strategy, model, train_ds, val_ds, epochs, callbacks, global_batch)
    return lambda model, train_ds, val_ds, epochs, callbacks, global_batch, verbose: \
        keras_fit(model, train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose)


def per_example_loss(model):
    """The compiled model's own loss, one value per face: whatever the flags
    built (balanced, label-smoothed, FER+'s multi-target), so the
    multi-worker loop trains what a single process trains."""
    import keras

    loss = model.loss
    return loss.call if isinstance(loss, keras.losses.Loss) else loss


def fit_multiworker(strategy, model, train_ds, val_ds, epochs, callbacks, global_batch):
    """Distributed training loop with fit's callbacks and progress display;
    its log has the validation scores --select may choose by (accuracy,
    mean class recall, ECE), as fit's does."""
    import keras
    import numpy as np
    import tensorflow as tf

    from ferkit.infer import metrics

    loss_of = per_example_loss(model)
    optimizer = model.optimizer
    dist_train = strategy.experimental_distribute_dataset(train_ds)

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                loss = tf.nn.compute_average_loss(loss_of(y, probs), global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            correct = tf.reduce_sum(tf.cast(tf.argmax(probs, 1) == tf.argmax(y, 1), tf.float32))
            return loss, correct, tf.cast(tf.shape(x)[0], tf.float32)

        loss, correct, count = strategy.run(step, args=batch)
        reduce = lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
        return reduce(loss), reduce(correct), reduce(count)

    @tf.function
    def val_step(x, y):
        probs = model(x, training=False)
        return tf.reduce_sum(loss_of(y, probs)), probs

    hooks = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs)
    hooks.on_train_begin()
    first = getattr(model, "_initial_epoch", None) or 0
    for epoch in range(first, epochs):
        hooks.on_epoch_begin(epoch)
        print(f"Epoch {epoch + 1}/{epochs}")
        progress = keras.utils.Progbar(None, verbose=1 if sys.stdout.isatty() else 2, stateful_metrics=["loss", "accuracy"])
        total_loss = total_correct = total_count = 0.0
        batches = 0
        for batch in dist_train:
            loss, correct, count = train_step(batch)
            batches += 1
            total_loss += float(loss)
            total_correct += float(correct)
            total_count += float(count)
            progress.update(batches, [("loss", total_loss / batches), ("accuracy", total_correct / total_count)])
        val_loss, probabilities, labels = 0.0, [], []
        for x, y in val_ds:
            loss, probs = val_step(x, y)
            val_loss += float(loss)
            probabilities.append(probs.numpy())
            labels.append(np.argmax(y.numpy(), axis=1))
        probabilities, labels = np.concatenate(probabilities), np.concatenate(labels)
        predicted = probabilities.argmax(axis=1)
        logs = {"loss": total_loss / batches, "accuracy": total_correct / total_count,
                "val_loss": val_loss / len(labels), "val_accuracy": float(np.mean(predicted == labels)),
                "val_mean_recall": metrics.mean_class_recall(labels, predicted, probabilities.shape[1]),
                "val_ece": metrics.expected_calibration_error(probabilities, labels)}
        progress.update(batches, [("loss", logs["loss"]), ("accuracy", logs["accuracy"])], finalize=True)
        print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        hooks.on_epoch_end(epoch, logs)
    hooks.on_train_end()
