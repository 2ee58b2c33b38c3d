"""One training run from parsed flags, which train_cnn.py and train_dnn.py
share: the data split, the model, the fit loop, and the held-out score.

The recipe and the flags are in recipes.py, the tf.data pipeline in
pipeline.py, the optimizer and loss in optim.py, the callbacks in
callbacks.py.
"""
import math
import os
import sys

import numpy as np

from ferkit import cli
from ferkit import fer2013
from ferkit import ferplus
from ferkit.balance import class_prior
from ferkit.callbacks import make_callbacks
from ferkit.errors import TrainingStopped
from ferkit.fer2013 import NUM_CLASSES
from ferkit.metrics import summary, summary_line
from ferkit.optim import compile_model
from ferkit.pipeline import make_dataset
from ferkit.recipes import settings_from
from ferkit.runlog import best_row, read_log


def load_split(args):
    """(train, validation, test) sets; test is the held-out PrivateTest part
    where the file has one (else None), scored once after training."""
    data = fer2013.load_csv(args.train, cache=not args.no_cache, limit=args.limit)
    if data.labels is None:
        raise fer2013.DataError(args.train, "has no label column, so it cannot train a model")
    if args.ferplus:
        return ferplus_split(args, data)
    try:
        train_idx, val_idx = fer2013.split_indices(data, args.val_split, args.split_seed)
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
    target_labels = np.where(targets.sum(axis=1) > 0, np.argmax(targets, axis=1), -1).astype(np.int8)
    train_idx = ferplus.part_rows(data, target_labels, "Training")
    val_idx = ferplus.part_rows(data, majority, "PublicTest")
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise fer2013.DataError(args.ferplus, "keeps no Training or no PublicTest face with a FER+ label")
    labelled = fer2013.Dataset(data.images, target_labels, data.ids, data.usage, targets)
    val = fer2013.Dataset(data.images, majority, data.ids, data.usage)
    test_idx = ferplus.part_rows(data, majority, "PrivateTest")
    return labelled.subset(train_idx), val.subset(val_idx), val.subset(test_idx) if len(test_idx) else None


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
    held_out = (f"; {len(test_set)} PrivateTest faces held out" + (", scored once at the end" if args.score_test else "")
                if test_set is not None else "")
    print(f"data: {len(train_set)} training and {len(val_set)} validation faces from {args.train}{held_out}")

    import tensorflow as tf

    from ferkit.distribute import fit_for, make_strategy, worker_paths
    from ferkit.models import stock_layers

    from ferkit import precision

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
    prior = class_prior(train_set.targets if train_set.targets is not None else train_set.labels, num_classes)
    if recipe["balance"] != "none":
        print(f"balance: {recipe['balance']} (tau {recipe['tau']:g}); training class shares "
              + ", ".join(f"{p:.4f}" for p in prior))
    with strategy.scope():
        model = compile_model(architecture, recipe, steps, compute, args.seed, num_classes, label_mode, prior=prior,
                              width=args.width)
        # What is saved: float32 stock layers, no optimizer state, so the file
        # loads anywhere with plain keras.saving.load_model.
        inference_model = stock_layers(model)
        if args.init_from:
            from ferkit.models import load_model

            start = load_model(args.init_from)
            if [w.shape for w in start.weights] != [w.shape for w in model.weights]:
                raise cli.UsageError(f"--init-from {args.init_from}: not a {architecture} model of width {args.width:g}")
            model.set_weights(start.get_weights())
            print(f"starting from the weights of {args.init_from}")
    if os.path.isdir(backup_dir):
        print(f"resuming from {backup_dir}")
    train_ds = make_dataset(train_set, global_batch, shuffle=True, augment=recipe["augment"], seed=args.seed,
                            erase=recipe["erase"], mixup_alpha=recipe["mixup"], num_classes=num_classes,
                            sample_targets=label_mode == "probability", balanced=recipe["balance"] == "sample",
                            photometric=recipe["photometric"])
    val_ds = make_dataset(val_set, 512, num_classes=num_classes)
    callbacks = make_callbacks(model, inference_model, out, log_path, backup_dir, args.select)
    try:
        with strategy.scope():
            fit_for(strategy, fit)(model, train_ds, val_ds, recipe["epochs"], callbacks, global_batch,
                                   verbose=1 if sys.stdout.isatty() else 2)
    except TrainingStopped as e:
        kept = (f"the last good model is {args.out}" if os.path.isfile(args.out)
                else "no epoch finished, so no model was saved")
        raise TrainingStopped(f"training stopped: {e}; {kept}, and rerunning resumes from the last finished epoch") from None
    rows = read_log(log_path)
    if curves:
        from ferkit.figures import plot_training_curves

        plot_training_curves(rows, curves, title)
    best = best_row(rows, "val_" + args.select)
    scores = ", ".join(f"{name} {float(best[key]):.4f}" for key, name in
                       (("val_accuracy", "accuracy"), ("val_mean_recall", "mean class recall"), ("val_ece", "ECE"))
                       if best.get(key))
    print(f"best validation {args.select} {float(best['val_' + args.select]):.4f} at epoch {best['epoch']} "
          f"({scores}); model: {out}; log: {log_path}; curves: {curves}")
    if test_set is not None and args.score_test:
        score_test(out, test_set, compute, "FER+ majority labels" if args.ferplus else "FER2013 labels")
    return rows


def score_test(path, test_set, compute, truth):
    """The saved model (the epoch validation chose) on the held-out test
    part, once: a figure to report, never a choice to make by."""
    from ferkit.inference import predict_proba
    from ferkit.models import load_model

    model = load_model(path, compute)
    scores = summary(predict_proba([model], test_set.images), test_set.labels, len(model.class_names))
    print(f"test: PrivateTest, {len(test_set)} faces, {truth}: {summary_line(scores)} "
          f"(the saved model, scored once after training)")
