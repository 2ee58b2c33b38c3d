"""The training loop both train_cnn.py and train_dnn.py share.

Data pipeline (uint8 in memory, augmentation per batch), recipes (presets),
callbacks (resume, best-model checkpoint, per-epoch log, NaN guard) and the
command-line flags. The scripts only pick an architecture and a preset.
"""
import math
import os
import sys
import time

import numpy as np

import cli
import fer2013
import ferplus
from augment import mixup, random_affine, random_erase
from runlog import best_row, progress_line, read_log, time_left, write_log
from distribute import STRATEGIES
from fer2013 import NUM_CLASSES

# Training recipes. Flags given on the command line override these values.
# augment: (max rotation in degrees, max shift as a fraction, max zoom), with a
# random horizontal flip whenever augment is on. erase: (probability, largest
# fraction of the face) of random erasing, a cutout box filled with the face's
# mean grey, applied after the affine; None turns it off. mixup: the alpha of
# mixup's Beta(alpha, alpha) mixing weights, or None for no mixup.
PRESETS = {
    # The seed report's recipe: Adam at a constant 1e-3 for 250 epochs.
    "seed": dict(epochs=250, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=0.0,
                 schedule="constant", warmup_epochs=0, label_smoothing=0.0, augment=(10, 0.1, 0.1),
                 erase=None, mixup=None),
    # Speed to accuracy on a CPU: AdamW, one warm-up epoch then cosine decay to
    # zero, label smoothing; 50 epochs, about an hour on 2 cores in bfloat16.
    # What it scores, and the variants tried against it: report/README.md, section 1.
    "fast": dict(epochs=50, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                 schedule="cosine", warmup_epochs=1, label_smoothing=0.1, augment=(10, 0.1, 0.1),
                 erase=None, mixup=None),
    # The fast recipe stretched to 120 epochs (about 2 hours there): the
    # released FER2013 model's recipe (report/README.md, section 1).
    "long": dict(epochs=120, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                 schedule="cosine", warmup_epochs=2, label_smoothing=0.1, augment=(10, 0.1, 0.1),
                 erase=None, mixup=None),
    # FER+ (--ferplus): the long recipe cut to 90 epochs, 1-2 hours on 2
    # cores in bfloat16, by CPU (report/README.md, section 8).
    "ferplus": dict(epochs=90, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                    schedule="cosine", warmup_epochs=2, label_smoothing=0.1, augment=(10, 0.1, 0.1),
                    erase=None, mixup=None),
    # The DNN: the same layers as the seed, regularized by dropout (in the
    # model), augmentation, label smoothing and decoupled weight decay.
    "dnn": dict(epochs=40, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                schedule="cosine", warmup_epochs=1, label_smoothing=0.1, augment=(8, 0.08, 0.08),
                erase=None, mixup=None),
}


OPTIMIZERS = ("adam", "adamw", "sgd")


def build_parser(description, model_name, presets, default_preset):
    """Flags shared by both training scripts; every default shows in --help."""
    p = cli.parser(description)
    p.add_argument("--preset", choices=presets, default=default_preset, help="training recipe (see training.PRESETS)")
    p.add_argument("--train", default="data/train.csv", help="training CSV, any Kaggle FER2013 layout, .gz ok")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="adam, adamw, or sgd (Nesterov momentum 0.9) (default: the preset's)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="decoupled weight decay: each step shrinks the weights by lr x this; 0 for none "
                        "(default: the preset's)")
    p.add_argument("--mixup", type=float, default=None, metavar="ALPHA",
                   help="mixup with Beta(ALPHA, ALPHA) weights, 0 for none (default: the preset's)")
    p.add_argument("--erase", type=float, nargs=2, default=None, metavar=("PROBABILITY", "MAX_AREA"),
                   help="random erasing: the share of faces that get a box filled with their mean, and the box's "
                        "largest share of the face (boxes start at 0.02); 0 0 for none (default: the preset's)")
    p.add_argument("--ferplus", default=None, metavar="FER2013NEW_CSV",
                   help="train on FER+'s ten-annotator labels (8 classes): fer2013new.csv, joined row by row to "
                        "--train, which must then be fer2013.csv or icml_face_data.csv; PublicTest validates")
    p.add_argument("--label-mode", choices=ferplus.LABEL_MODES, default="majority",
                   help="with --ferplus, the targets FER+'s votes give (validation always uses majority labels)")
    p.add_argument("--val-split", type=float, default=fer2013.VAL_SPLIT,
                   help="validation fraction, stratified, when the CSV has no Usage column")
    p.add_argument("--seed", type=int, default=fer2013.SPLIT_SEED, help="seed for the split, shuffling, augmentation and weights")
    p.add_argument("--limit", type=int, default=None, help="use only the first N rows (quick runs)")
    p.add_argument("--no-augment", action="store_true", help="turn data augmentation off")
    p.add_argument("--out", default=f"models/{model_name}.keras", help="where the best model (by validation accuracy) goes")
    p.add_argument("--log", default=None, help="per-epoch CSV log (default: OUT with .log.csv)")
    # Beside the model, like the log, so that a training run never overwrites
    # the report's figures; the report's commands name their figure.
    p.add_argument("--curves", default=None, help="training-curve figure, '' for none (default: OUT with _training.png)")
    p.add_argument("--deterministic", action="store_true", help="deterministic ops: bit-identical reruns on CPU, slower")
    p.add_argument("--init-from", default=None, help="start from this saved model's weights (a warm restart: new schedule, fresh optimizer)")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute strategy; --batch-size is per replica (see distribute.py)")
    p.add_argument("--no-cache", action="store_true", help="do not keep a parsed copy of the CSV (see fer2013.cache_dir)")
    # Training defaults to auto (bfloat16 where the hardware has it): over the
    # full fast preset (50 epochs, seed 0) bfloat16 ended within a point of
    # float32 on validation (report/README.md, section 2).
    cli.add_precision_flag(p)
    return p



def settings_from(args):
    """The preset's recipe with any command-line overrides applied."""
    recipe = dict(PRESETS[args.preset])
    for key in ("epochs", "batch_size", "lr", "mixup", "optimizer", "weight_decay"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    if args.erase is not None:
        probability, max_area = args.erase
        if probability == 0 or max_area == 0:
            recipe["erase"] = None
        elif 0 < probability <= 1 and 0.02 < max_area < 1:
            recipe["erase"] = (probability, max_area)
        else:
            raise cli.UsageError("--erase needs a probability in (0, 1] and a largest area in (0.02, 1), or 0 0 for none")
    if recipe["weight_decay"] < 0:
        raise cli.UsageError("--weight-decay must be 0 (off) or positive")
    if args.mixup is not None and args.mixup < 0:
        raise cli.UsageError("--mixup must be 0 (off) or a positive alpha")
    recipe["mixup"] = recipe["mixup"] or None  # --mixup 0 means off.
    if args.no_augment:
        recipe["augment"] = recipe["erase"] = recipe["mixup"] = None
    if recipe["epochs"] < 1 or recipe["batch_size"] < 1 or recipe["lr"] <= 0:
        raise cli.UsageError("--epochs, --batch-size and --lr must be positive")
    if not args.out.endswith(".keras"):
        raise cli.UsageError(f"--out {args.out}: a model file name must end in .keras")
    if args.limit is not None and args.limit < 2:
        raise cli.UsageError("--limit must be at least 2")
    return recipe


def load_split(args):
    """(train, validation, test) sets; test is the held-out PrivateTest part
    where the file has one (else None), scored once after training."""
    data = fer2013.load_csv(args.train, cache=not args.no_cache, limit=args.limit)
    if data.labels is None:
        raise fer2013.DataError(args.train, "has no label column, so it cannot train a model")
    if args.ferplus:
        return ferplus_split(args, data)
    try:
        train_idx, val_idx = fer2013.split_indices(data, args.val_split, args.seed)
    except ValueError as e:
        raise cli.UsageError(str(e)) from None
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise fer2013.DataError(args.train, f"too few rows for a training and a validation part ({len(data)} rows)")
    test_idx = fer2013.test_indices(data)
    return data.subset(train_idx), data.subset(val_idx), data.subset(test_idx) if len(test_idx) else None


def ferplus_split(args, data):
    """FER+'s training faces with the label mode's targets (faces it drops
    left out), the PublicTest faces with majority labels for validation, and
    the PrivateTest ones (FER+'s test set) with majority labels, if any."""
    if args.limit is not None:
        raise cli.UsageError("--limit does not go with --ferplus, which joins the whole file row by row")
    votes = ferplus.load_votes(args.ferplus, data, args.train)
    targets = ferplus.training_targets(votes, args.label_mode)
    majority = ferplus.majority_labels(votes)
    usage = fer2013.USAGES
    train_idx = np.flatnonzero((data.usage == usage.index("Training")) & (targets.sum(axis=1) > 0))
    val_idx = np.flatnonzero((data.usage == usage.index("PublicTest")) & (majority >= 0))
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise fer2013.DataError(args.ferplus, "keeps no Training or no PublicTest face with a FER+ label")
    labelled = fer2013.Dataset(data.images, np.argmax(targets, axis=1).astype(np.int8), data.ids, data.usage, targets)
    val = fer2013.Dataset(data.images, majority, data.ids, data.usage)
    test_idx = fer2013.test_indices(data)
    test_idx = test_idx[majority[test_idx] >= 0]
    return labelled.subset(train_idx), val.subset(val_idx), val.subset(test_idx) if len(test_idx) else None


def make_dataset(data, batch_size, shuffle=False, augment=None, seed=0, erase=None, mixup_alpha=None,
                 num_classes=NUM_CLASSES, sample_targets=False):
    """tf.data pipeline. Images stay uint8 (66 MB for all of FER2013's training
    set); each batch is cast to float32 and augmented on its way to the model.
    Labels become one-hot so that label smoothing works; where data has
    soft targets (FER+) those are the labels, and sample_targets draws a
    one-hot label from them afresh each time a face is drawn (FER+'s
    probability mode)."""
    import tensorflow as tf

    labels = data.targets.astype(np.float32) if data.targets is not None else data.labels.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((fer2013.as_model_input(data.images), labels))
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    counter = tf.data.Dataset.counter()  # A fresh augmentation seed per batch.

    def to_model_input(x, y, step=None):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = random_affine(x, tf.stack([tf.cast(seed, tf.int64), step]), augment)
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

    if augment is not None or erase is not None or mixup_alpha is not None or sample_targets:
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda xy, step: to_model_input(*xy, step), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        ds = ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_schedule(recipe, steps_per_epoch):
    """The learning rate as a function of the optimizer's step count, so that
    restoring the optimizer (on resume) restores the schedule too."""
    import keras

    if recipe["schedule"] != "cosine":
        return recipe["lr"]
    total = recipe["epochs"] * steps_per_epoch
    warmup = min(recipe["warmup_epochs"] * steps_per_epoch, total - 1)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(recipe["lr"], decay_steps=total)
    # Warm up linearly from lr/10 to lr, then cosine decay to zero.
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe["lr"] / 10, decay_steps=total - warmup, alpha=0.0,
        warmup_target=recipe["lr"], warmup_steps=warmup,
    )


def make_optimizer(recipe, steps_per_epoch):
    import keras

    lr = make_schedule(recipe, steps_per_epoch)
    wd = recipe["weight_decay"] or None
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if recipe["optimizer"] == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe["weight_decay"])
    return keras.optimizers.Adam(lr, weight_decay=wd)


def current_lr(optimizer):
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def compile_model(architecture, recipe, steps_per_epoch, compute="float32", seed=0, num_classes=NUM_CLASSES,
                  label_mode=None, fused=True):
    """A freshly seeded model compiled for training: the one compile path
    that train() and bench.py share. compute is a resolved precision (see
    precision.py), set as Keras' global dtype policy here and nowhere else."""
    import keras

    import precision
    from models import ARCHITECTURES

    keras.config.set_dtype_policy(precision.policy(compute))
    keras.utils.set_random_seed(seed)
    model = ARCHITECTURES[architecture](fused_batch_norm=fused, num_classes=num_classes)
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch), loss=make_loss(recipe, label_mode),
                  metrics=["accuracy"])
    return model


def make_loss(recipe, label_mode):
    """Cross-entropy with the recipe's label smoothing; for FER+'s
    multi-target mode, the loss of the best-scoring class among those the
    votes allow: -log max_k p_k over the classes with a non-zero target."""
    import keras

    if label_mode != "multitarget":
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe["label_smoothing"])

    # Registered so that copying the compiled model (models.convert) finds it.
    @keras.saving.register_keras_serializable(package="fer", name="multitarget_loss")
    def multitarget_loss(y_true, y_pred):
        allowed = keras.ops.cast(y_true > 0, y_pred.dtype)
        best = keras.ops.max(allowed * y_pred, axis=-1)
        return -keras.ops.log(keras.ops.maximum(best, 1e-7))

    return multitarget_loss


class NonFiniteLoss(RuntimeError):
    pass


def make_callbacks(model, inference_model, out, log_path, backup_dir):
    """Keras callbacks: resume (BackupAndRestore), log, best model, NaN guard."""
    import keras

    from models import save_model

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        # Checked once an epoch (a per-batch check costs ~6% of throughput, as
        # it syncs every step). Raising, first in the callback list, ends fit
        # before any other callback sees the epoch: resume and the best model
        # both keep the last good state.
        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise NonFiniteLoss(f"loss became {float(loss)} in epoch {epoch + 1}")

    class EpochLog(keras.callbacks.Callback):
        """Per-epoch CSV; on resume, rows of epochs that will be trained again
        are dropped, so no epoch appears twice. Rewritten atomically."""

        def on_train_begin(self, logs=None):
            first = getattr(self.model, "_initial_epoch", None) or 0
            self.rows = [r for r in read_log(log_path) if int(r["epoch"]) <= first] if first else []
            self.best = max((float(r["val_accuracy"]) for r in self.rows), default=-1.0)
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "lr": current_lr(self.model.optimizer),
                   "seconds": round(time.time() - self.started, 1)}
            row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
            if row.get("val_accuracy", -1.0) > self.best:
                self.best = row["val_accuracy"]
                inference_model.set_weights(self.model.get_weights())
                save_model(inference_model, out)
                row["saved"] = 1
            else:
                row["saved"] = 0
            row.update(time_left(self.rows + [row], self.params.get("epochs") or int(row["epoch"])))
            self.rows.append(row)
            write_log(log_path, self.rows)
            print(progress_line(row, self.params.get("epochs")), flush=True)

    restore = keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=True, double_checkpoint=True)
    return [StopOnNonFiniteLoss(), restore, EpochLog()]


def fit(model, train_ds, **fit_kwargs):
    """model.fit over one iterator for the whole run (the shuffle still
    reshuffles each epoch), an epoch being one pass over train_ds. Given a
    finite dataset, Keras opens a new iterator at the end of each epoch and
    then another at the start of the next; dropping the spare one stalled
    every epoch after the first by ~8 s here, 40% of an epoch of 5,400 faces."""
    steps_per_epoch = int(train_ds.cardinality())
    if steps_per_epoch < 1:
        raise ValueError("fit needs a finite training dataset of known length (make_dataset gives one)")
    # shuffle=False: make_dataset already shuffles; Keras would only warn that
    # its own (default) shuffle does not apply to a tf.data.Dataset.
    return model.fit(train_ds.repeat(), steps_per_epoch=steps_per_epoch, shuffle=False, **fit_kwargs)


def train(args, architecture, title):
    """Run one training job from parsed flags; returns the final log rows."""
    recipe = settings_from(args)
    stem = os.path.splitext(args.out)[0]  # The log and the curves default to files beside the model.
    log_path = args.log or stem + ".log.csv"
    curves_path = stem + "_training.png" if args.curves is None else args.curves
    effective = {**vars(args), **recipe, "log": log_path, "curves": curves_path}
    print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in sorted(effective.items())))
    train_set, val_set, test_set = load_split(args)
    held_out = f"; {len(test_set)} PrivateTest faces held out, scored once at the end" if test_set is not None else ""
    print(f"data: {len(train_set)} training and {len(val_set)} validation faces from {args.train}{held_out}")

    import keras
    import tensorflow as tf

    from distribute import fit_for, make_strategy, worker_paths
    from models import stock_layers

    import precision

    compute = precision.resolve(args.precision)
    print(f"precision: {compute} (--precision {args.precision}; Keras policy {precision.policy(compute)})")
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = recipe["batch_size"] * replicas
    recipe = dict(recipe, lr=recipe["lr"] * replicas)  # The linear scaling rule.
    out, log_path, curves, backup_dir = worker_paths(strategy, args.out, log_path, curves_path)
    print(f"strategy: {type(strategy).__name__}, {replicas} replica(s), global batch {global_batch}, peak lr {recipe['lr']:g}")
    steps = math.ceil(len(train_set) / global_batch)
    num_classes = ferplus.NUM_CLASSES if args.ferplus else NUM_CLASSES
    label_mode = args.label_mode if args.ferplus else None
    if label_mode:
        print(f"labels: FER+ {label_mode} ({num_classes} classes); validation: FER+ majority labels")
    with strategy.scope():
        model = compile_model(architecture, recipe, steps, compute, args.seed, num_classes, label_mode)
        # What is saved: float32 stock layers, no optimizer state, so the file
        # loads anywhere with plain keras.saving.load_model.
        inference_model = stock_layers(model)
        if args.init_from:
            from models import load_model

            start = load_model(args.init_from)
            if [w.shape for w in start.weights] != [w.shape for w in model.weights]:
                raise cli.UsageError(f"--init-from {args.init_from}: not a {architecture} model")
            model.set_weights(start.get_weights())
            print(f"starting from the weights of {args.init_from}")
    if os.path.isdir(backup_dir):
        print(f"resuming from {backup_dir}")
    train_ds = make_dataset(train_set, global_batch, shuffle=True, augment=recipe["augment"], seed=args.seed,
                            erase=recipe["erase"], mixup_alpha=recipe["mixup"], num_classes=num_classes,
                            sample_targets=label_mode == "probability")
    val_ds = make_dataset(val_set, 512, num_classes=num_classes)
    callbacks = make_callbacks(model, inference_model, out, log_path, backup_dir)
    try:
        with strategy.scope():
            fit_for(strategy, fit)(model, train_ds, val_ds, recipe["epochs"], callbacks, global_batch,
                                   verbose=1 if sys.stdout.isatty() else 2)
    except NonFiniteLoss as e:
        print(f"error: training stopped: {e}; the last good model is {args.out}, "
              f"and rerunning resumes from the last finished epoch", file=sys.stderr)
        sys.exit(3)
    rows = read_log(log_path)
    if curves:
        from figures import plot_training_curves

        plot_training_curves(rows, curves, title)
    best = best_row(rows)
    print(f"best validation accuracy {float(best['val_accuracy']):.4f} at epoch {best['epoch']}; "
          f"model: {out}; log: {log_path}; curves: {curves}")
    if test_set is not None:
        score_test(out, test_set, compute, "FER+ majority labels" if args.ferplus else "FER2013 labels")
    return rows


def score_test(path, test_set, compute, truth):
    """The saved model (the epoch validation chose) on the held-out test
    part, once: a figure to report, never a choice to make by."""
    from inference import predict_proba
    from models import load_model

    predicted = predict_proba([load_model(path, compute)], test_set.images).argmax(axis=1)
    print(f"test: PrivateTest, {len(test_set)} faces, {truth}: accuracy {np.mean(predicted == test_set.labels):.4f} "
          f"(the saved model, scored once after training)")
