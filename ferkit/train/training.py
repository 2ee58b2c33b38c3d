"""One training run from its configuration (config.TrainConfig, which
train_cnn.py and train_dnn.py build from their flags): the data split, the
model, the fit loop, and the held-out score.

The recipe and the flags are in recipes.py, the tf.data pipeline in
pipeline.py, the optimizer and loss in optim.py, the callbacks in
callbacks.py.
"""
import glob
import math
import os
import sys

import numpy as np

from ferkit.data import fer2013
from ferkit.data import ferplus
from ferkit import paths
from ferkit.train.balance import class_prior
from ferkit.nets.backbones import PRETRAINED
from ferkit.train.callbacks import make_callbacks
from ferkit.nets.card import training_card
from ferkit.errors import TrainingStopped, UsageError
from ferkit.data.fer2013 import NUM_CLASSES
from ferkit.infer.metrics import summary, summary_line
from ferkit.train.optim import compile_model
from ferkit.train.pipeline import make_dataset
from ferkit.train.recipes import settings_from
from ferkit.train.runlog import best_row, read_log


def initial_weights(start, model):
    """The weights a warm restart (--init-from) gives `model`: all of
    `start`'s, or, where only the output layer differs (a FER+ model's 8
    classes for a FER2013 model's 7), all but that layer's, which keeps its
    fresh initialisation. None where the two are different networks."""
    mine, theirs = model.get_weights(), start.get_weights()
    if [w.shape for w in theirs] == [w.shape for w in mine]:
        return theirs
    if len(theirs) == len(mine) and [w.shape for w in theirs[:-2]] == [w.shape for w in mine[:-2]] \
            and theirs[-2].shape[:-1] == mine[-2].shape[:-1]:
        return theirs[:-2] + mine[-2:]
    return None


def load_split(train, ferplus_votes=None, label_mode="majority", val_split=fer2013.VAL_SPLIT,
               split_seed=fer2013.SPLIT_SEED, limit=None, cache=True):
    """(train, validation, test) sets of the CSV `train` (with FER+'s votes
    where ferplus_votes names fer2013new.csv); test is the held-out
    PrivateTest part where the file has one (else None), scored once after
    training."""
    data = fer2013.load_csv(train, cache=cache, limit=limit)
    if data.labels is None:
        raise fer2013.DataError(train, "has no label column, so it cannot train a model")
    if ferplus_votes:
        if limit is not None:
            raise UsageError("--limit does not go with --ferplus, which joins the whole file row by row")
        return ferplus_split(data, train, ferplus_votes, label_mode)
    try:
        train_idx, val_idx = fer2013.split_indices(data, val_split, split_seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise fer2013.DataError(train, f"too few rows for a training and a validation part ({len(data)} rows)")
    test_idx = fer2013.test_indices(data)
    return data.subset(train_idx), data.subset(val_idx), data.subset(test_idx) if len(test_idx) else None


def ferplus_split(data, data_path, votes_path, label_mode):
    """FER+'s training faces with the label mode's targets (faces it drops
    left out), the PublicTest faces with majority labels for validation, and
    the PrivateTest ones (FER+'s test set) with majority labels, if any.
    data: the faces read from data_path; votes_path: fer2013new.csv."""
    votes = ferplus.load_votes(votes_path, data, data_path)
    targets = ferplus.training_targets(votes, label_mode)
    majority = ferplus.majority_labels(votes)
    target_labels = np.where(targets.sum(axis=1) > 0, np.argmax(targets, axis=1), -1).astype(np.int8)
    train_idx = ferplus.part_rows(data, target_labels, "Training")
    val_idx = ferplus.part_rows(data, majority, "PublicTest")
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise fer2013.DataError(votes_path, "keeps no Training or no PublicTest face with a FER+ label")
    labelled = fer2013.Dataset(data.images, target_labels, data.ids, data.usage, targets)
    val = fer2013.Dataset(data.images, majority, data.ids, data.usage)
    test_idx = ferplus.part_rows(data, majority, "PrivateTest")
    return labelled.subset(train_idx), val.subset(val_idx), val.subset(test_idx) if len(test_idx) else None


def taught(train_set, config, num_classes):
    """The training faces with the teachers' targets (distill.py): only
    these faces are read by the teachers, never the validation ones."""
    from ferkit.train.distill import blend, teacher_probabilities

    own = train_set.targets if train_set.targets is not None else np.eye(num_classes)[train_set.labels]
    teacher = teacher_probabilities(config.teacher, train_set.images)
    if teacher.shape[1] != num_classes:
        raise UsageError(f"--teacher {config.teacher[0]}: gives {teacher.shape[1]} classes, the data has "
                             f"{num_classes}")
    targets = blend(teacher, own, config.teacher_weight)
    print(f"teachers: {', '.join(config.teacher)} on the {len(train_set)} training faces (flip TTA), "
          f"weight {config.teacher_weight:g}; they agree with the labels on "
          f"{np.mean(teacher.argmax(1) == own.argmax(1)):.4f}")
    return fer2013.Dataset(train_set.images, targets.argmax(1).astype(np.int8), train_set.ids, train_set.usage, targets)


def backbone_options(config):
    """The builder's options of a pretrained architecture: its input size and
    converted weights (models/convert_backbones.py writes them)."""
    from ferkit.nets.backbones import INPUT_SIZES

    weights = config.backbone_weights or os.path.join(paths.MODELS_DIR, "backbones", f"{config.arch}.npz")
    if not os.path.isfile(weights):
        raise UsageError(f"{weights}: no converted {config.arch} weights; run models/convert_backbones.py first "
                             "(or name the file with --backbone-weights)")
    if config.input_size not in INPUT_SIZES:
        raise UsageError(f"--input-size {config.input_size}: one of {', '.join(map(str, INPUT_SIZES))}")
    return {"input_size": config.input_size, "weights": weights}


def restore_statistics(model, train_set, seed, count=1024):
    """The backbone's BatchNorm statistics measured on `count` training faces
    drawn with the run's seed (backbones.restore_batch_norm)."""
    from ferkit.nets.backbones import restore_batch_norm

    rows = np.random.default_rng(seed).permutation(len(train_set))[:count]
    restore_batch_norm(model, fer2013.as_model_input(train_set.images[np.sort(rows)]))


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


def train(config, title):
    """Run one training job (config: a config.TrainConfig); returns the
    final log rows. title names the model in what is printed."""
    # Before the data and the teachers are read: a mistyped --out fails at once.
    # (A multiworker run's other workers keep theirs beside it, as OUT.resume-workerN.)
    if config.resume and not glob.glob(glob.escape(config.out) + ".resume*"):
        raise UsageError(f"--resume: no checkpoint at {config.out}.resume to go on from (is --out {config.out} "
                             "the run's?); leave --resume out to start afresh")
    recipe = settings_from(config)
    architecture = config.arch
    stem = os.path.splitext(config.out)[0]  # The log and the curves default to files beside the model.
    log_path = config.log or stem + ".log.csv"
    curves_path = stem + "_training.png" if config.curves is None else config.curves
    effective = {**config.as_dict(), **recipe.as_dict(), "log": log_path, "curves": curves_path}
    print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in sorted(effective.items())))
    train_set, val_set, test_set = load_split(config.train, config.ferplus, config.label_mode, config.val_split,
                                              config.split_seed, config.limit, cache=not config.no_cache)
    held_out = (f"; {len(test_set)} PrivateTest faces held out" + (", scored once at the end" if config.score_test else "")
                if test_set is not None else "")
    print(f"data: {len(train_set)} training and {len(val_set)} validation faces from {config.train}{held_out}")
    if config.teacher:
        train_set = taught(train_set, config, NUM_CLASSES if not config.ferplus else ferplus.NUM_CLASSES)

    import tensorflow as tf

    from ferkit.train.distribute import fit_for, make_strategy, worker_paths
    from ferkit.nets.models import stock_layers

    from ferkit.nets import precision

    compute = precision.resolve(config.precision)
    if config.arch in PRETRAINED and config.precision == "auto":
        # Depthwise layers gain nothing from bfloat16 on these CPUs (faceres at 112 px, batch 128: 99.5 images/s
        # in both on an AMD EPYC with AVX512-BF16; slower in bfloat16 on an AMX Xeon), so float32 keeps the exact math.
        compute = "float32"
    print(f"precision: {compute} (--precision {config.precision}; Keras policy {precision.policy(compute)})")
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = recipe["batch_size"] * replicas
    recipe = recipe.replace(lr=recipe.lr * replicas)  # The linear scaling rule.
    out, log_path, curves, backup_dir = worker_paths(strategy, config.out, log_path, curves_path)
    print(f"strategy: {type(strategy).__name__}, {replicas} replica(s), global batch {global_batch}, peak lr {recipe['lr']:g}")
    steps = math.ceil(len(train_set) / global_batch)
    num_classes = ferplus.NUM_CLASSES if config.ferplus else NUM_CLASSES
    label_mode = config.label_mode if config.ferplus else None
    if label_mode:
        print(f"labels: FER+ {label_mode} ({num_classes} classes); validation: FER+ majority labels")
    prior = class_prior(train_set.targets if train_set.targets is not None else train_set.labels, num_classes)
    if recipe["balance"] != "none":
        print(f"balance: {recipe['balance']} (tau {recipe['tau']:g}); training class shares "
              + ", ".join(f"{p:.4f}" for p in prior))
    backbone = backbone_options(config) if architecture in PRETRAINED else None
    with strategy.scope():
        model = compile_model(architecture, recipe, steps, compute, config.seed, num_classes, label_mode, prior=prior,
                              width=config.width, backbone=backbone)
        # What is saved: float32 stock layers, no optimizer state, so the file
        # loads anywhere with plain keras.saving.load_model.
        inference_model = stock_layers(model)
        if config.init_from:
            from ferkit.nets.models import load_model

            start = load_model(config.init_from)
            copied = initial_weights(start, model)
            if copied is None:
                raise UsageError(f"--init-from {config.init_from}: not a {architecture} model of width {config.width:g}")
            model.set_weights(copied)
            if len(getattr(start, "class_names", ())) != num_classes:
                print(f"starting from the weights of {config.init_from} but its output layer "
                      f"({len(getattr(start, 'class_names', ()))} classes; this run's {num_classes} start afresh)")
            else:
                print(f"starting from the weights of {config.init_from}")
        elif backbone:
            restore_statistics(model, train_set, config.seed)
            print(f"backbone: {architecture} at {config.input_size} px from {backbone['weights']}; the head alone for "
                  f"{recipe['head_epochs']} epoch(s), then the backbone at {recipe['backbone_lr']:g} x the rate; "
                  f"BatchNorm {'frozen' if recipe['freeze_bn'] else 'training'}")
    if os.path.isdir(backup_dir):
        print(f"resuming from {backup_dir}")
    train_ds = make_dataset(train_set, global_batch, shuffle=True, recipe=recipe, seed=config.seed,
                            num_classes=num_classes, sample_targets=label_mode == "probability")
    val_ds = make_dataset(val_set, 512, num_classes=num_classes)
    data_files = {"train": config.train, "ferplus": config.ferplus, "init_from": config.init_from,
                  "backbone": backbone and backbone["weights"],
                  **{f"teacher{i + 1}": path for i, path in enumerate(config.teacher)}}
    card = training_card(config, {**recipe.as_dict(), "precision": compute, "replicas": replicas}, data_files)
    callbacks = make_callbacks(model, inference_model, out, log_path, backup_dir, config.select, card)
    try:
        with strategy.scope():
            fit_for(strategy, fit)(model, train_ds, val_ds, recipe["epochs"], callbacks, global_batch,
                                   verbose=1 if sys.stdout.isatty() else 2)
    except TrainingStopped as e:
        kept = (f"the last good model is {config.out}" if os.path.isfile(config.out)
                else "no epoch finished, so no model was saved")
        raise TrainingStopped(f"training stopped: {e}; {kept}, and rerunning resumes from the last finished epoch") from None
    rows = read_log(log_path)
    if curves:
        from ferkit.train.figures import plot_training_curves

        plot_training_curves(rows, curves, title, config.select)
    best = best_row(rows, "val_" + config.select)
    scores = ", ".join(f"{name} {float(best[key]):.4f}" for key, name in
                       (("val_accuracy", "accuracy"), ("val_mean_recall", "mean class recall"), ("val_ece", "ECE"))
                       if best.get(key))
    print(f"best validation {config.select} {float(best['val_' + config.select]):.4f} at epoch {best['epoch']} "
          f"({scores}); model: {out}; log: {log_path}; curves: {curves}")
    if test_set is not None and config.score_test:
        score_test(out, test_set, compute, "FER+ majority labels" if config.ferplus else "FER2013 labels")
    return rows


def score_test(path, test_set, compute, truth):
    """The saved model (the epoch validation chose) on the held-out test
    part, once: a figure to report, never a choice to make by."""
    from ferkit.infer.inference import predict_proba
    from ferkit.nets.models import load_model

    model = load_model(path, compute)
    scores = summary(predict_proba([model], test_set.images), test_set.labels, len(model.class_names))
    print(f"test: PrivateTest, {len(test_set)} faces, {truth}: {summary_line(scores)} "
          f"(the saved model, scored once after training)")
