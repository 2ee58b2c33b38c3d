"""What a model is compiled with: the learning-rate schedule, the
optimizer, the loss (balanced or not, see balance.py) and the metrics."""
from ferkit.train import balance
from ferkit.data.fer2013 import NUM_CLASSES


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


def fine_tuning_adamw():
    """AdamW for a pretrained backbone under a new head (backbones.py): the
    backbone's variables learn at backbone_lr_scale times the head's rate,
    and not at all for the first frozen_steps (the head learns alone first,
    so that its random start sends no large gradients into the pretrained
    layers); weight decay, which pulls weights towards zero rather than
    towards where they started, applies to the head alone. The schedule
    steps on through the frozen steps, so resuming needs nothing extra."""
    import keras

    from ferkit.nets.backbones import is_backbone_layer

    @keras.saving.register_keras_serializable(package="fer")
    class FineTuningAdamW(keras.optimizers.AdamW):
        def __init__(self, *args, frozen_steps=0, backbone_lr_scale=0.1, **kwargs):
            super().__init__(*args, **kwargs)
            self.frozen_steps = int(frozen_steps)
            self.backbone_lr_scale = float(backbone_lr_scale)

        def build(self, variables):
            backbone = [v for v in variables if is_backbone_layer(v.path.split("/")[0])]
            self.exclude_from_weight_decay(var_list=backbone)
            super().build(variables)
            self._backbone_keys = {self._var_key(v) for v in backbone}

        def update_step(self, gradient, variable, learning_rate):
            if self._var_key(variable) in self._backbone_keys:
                scale = keras.ops.where(self.iterations < self.frozen_steps, 0.0, self.backbone_lr_scale)
                learning_rate = learning_rate * keras.ops.cast(scale, learning_rate.dtype)
            return super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            return {**super().get_config(), "frozen_steps": self.frozen_steps,
                    "backbone_lr_scale": self.backbone_lr_scale}

    return FineTuningAdamW


def make_optimizer(recipe, steps_per_epoch, backbone=False):
    """The recipe's optimizer; backbone: the model has pretrained layers,
    which learn at recipe['backbone_lr'] times the rate after
    recipe['head_epochs'] epochs of the head alone (AdamW only)."""
    import keras

    lr = make_schedule(recipe, steps_per_epoch)
    wd = recipe["weight_decay"] or None
    if backbone:
        if recipe["optimizer"] != "adamw":
            raise ValueError("a pretrained backbone is fine-tuned with --optimizer adamw")
        return fine_tuning_adamw()(lr, weight_decay=recipe["weight_decay"],
                                   frozen_steps=recipe.get("head_epochs", 0) * steps_per_epoch,
                                   backbone_lr_scale=recipe.get("backbone_lr", 0.1))
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if recipe["optimizer"] == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe["weight_decay"])
    return keras.optimizers.Adam(lr, weight_decay=wd)


def current_lr(optimizer):
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def compile_model(architecture, recipe, steps_per_epoch, compute="float32", seed=0, num_classes=NUM_CLASSES,
                  label_mode=None, fused=True, prior=None, width=1.0, backbone=None):
    """A freshly seeded model compiled for training: the one compile path
    that train() and bench.py share. compute is a resolved precision (see
    precision.py), set as Keras' global dtype policy here and nowhere else.
    prior: the training set's class shares, which --balance needs; width:
    the architecture's width multiplier (models.build_cnn); backbone: for a
    pretrained architecture (models.BACKBONES), {input_size, weights} (the
    converted weights file, None for random weights)."""
    import keras

    from ferkit.nets import precision
    from ferkit.train.keras_metrics import CalibrationError, MeanClassRecall
    from ferkit.nets.models import ARCHITECTURES

    keras.config.set_dtype_policy(precision.policy(compute))
    keras.utils.set_random_seed(seed)
    from ferkit.nets.models import BACKBONES

    pretrained = architecture in BACKBONES
    model = ARCHITECTURES[architecture](fused_batch_norm=fused, num_classes=num_classes, width=width,
                                        **((backbone or {}) if pretrained else {}))
    if pretrained and recipe.get("freeze_bn"):
        from ferkit.nets.backbones import is_backbone_layer

        for layer in model.layers:  # A BatchNorm that does not train normalises with its moving statistics.
            if is_backbone_layer(layer.name) and layer.name.endswith("_bn"):
                layer.trainable = False
    model.compile(optimizer=make_optimizer(recipe, steps_per_epoch, backbone=pretrained), loss=make_loss(recipe, label_mode, prior),
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
