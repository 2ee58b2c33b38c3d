"""What a model is compiled with: the learning-rate schedule, the
optimizer, the loss (balanced or not, see balance.py) and the metrics."""
from ferkit import balance
from ferkit.fer2013 import NUM_CLASSES


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
                  label_mode=None, fused=True, prior=None, width=1.0):
    """A freshly seeded model compiled for training: the one compile path
    that train() and bench.py share. compute is a resolved precision (see
    precision.py), set as Keras' global dtype policy here and nowhere else.
    prior: the training set's class shares, which --balance needs; width:
    the architecture's width multiplier (models.build_cnn)."""
    import keras

    from ferkit import precision
    from ferkit.keras_metrics import CalibrationError, MeanClassRecall
    from ferkit.models import ARCHITECTURES

    keras.config.set_dtype_policy(precision.policy(compute))
    keras.utils.set_random_seed(seed)
    model = ARCHITECTURES[architecture](fused_batch_norm=fused, num_classes=num_classes, width=width)
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch), loss=make_loss(recipe, label_mode, prior),
                  metrics=["accuracy", MeanClassRecall(num_classes), CalibrationError()])
    return model


def make_loss(recipe, label_mode, prior=None):
    """Cross-entropy with the recipe's label smoothing, balanced as the
    recipe's balance mode says (balance.make_loss); for FER+'s
    multi-target mode, the loss of the best-scoring class among those the
    votes allow: -log max_k p_k over the classes with a non-zero target."""
    import keras

    mode = recipe.get("balance", "none")
    if label_mode != "multitarget":
        if mode in ("logit-adjust", "reweight") and prior is None:
            raise ValueError(f"--balance {mode} needs the class prior")
        return balance.make_loss(mode, prior, recipe.get("tau", 1.0), recipe["label_smoothing"])
    if mode != "none":
        raise ValueError("FER+'s multi-target loss picks its class itself and takes no --balance")

    # Registered so that copying the compiled model (models.convert) finds it.
    @keras.saving.register_keras_serializable(package="fer", name="multitarget_loss")
    def multitarget_loss(y_true, y_pred):
        allowed = keras.ops.cast(y_true > 0, y_pred.dtype)
        best = keras.ops.max(allowed * y_pred, axis=-1)
        return -keras.ops.log(keras.ops.maximum(best, 1e-7))

    return multitarget_loss
