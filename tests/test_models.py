"""models.py: the seed's exact parameter counts and a lossless save/load."""
import numpy as np
import pytest

from ferkit.programs import cli
from ferkit.nets.models import build_cnn, build_dnn, count_params, flops_per_image, load_model


def test_cnn_has_the_seed_layer_lists_parameter_count():
    assert count_params(build_cnn()) == (11_845_095, 7_040)


def test_width_scales_every_layer_and_is_checked():
    import keras

    from ferkit.train import recipes
    from ferkit.programs import train_flags

    half = build_cnn(width=0.5)
    assert [l.filters for l in half.layers if isinstance(l, keras.layers.Conv2D)] == [16, 16, 32, 32, 64, 64]
    assert [l.units for l in half.layers if isinstance(l, keras.layers.Dense)] == [1024, 512, 7]
    convs = [(1, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    dense = [(6 * 6 * 64, 1024), (1024, 512)]
    batch_norm = 4 * (sum(o for _, o in convs) + sum(o for _, o in dense))  # Half of it non-trainable.
    total = sum(9 * i * o + o for i, o in convs) + sum(i * o + o for i, o in dense) + 512 * 7 + 7 + batch_norm
    assert count_params(half) == (total, batch_norm // 2) == (2_967_543, 3_520)
    assert count_params(build_dnn(width=0.25))[0] == 2304 * 256 + 3 * 256 * 256 + 4 * 256 + 4 * 4 * 256 + 256 * 7 + 7
    parse = lambda *argv: recipes.settings_from(train_flags.build_parser("t", "cnn", ["fast"], "fast").parse_args(argv))
    for bad in ("0", "-1", "5"):
        with pytest.raises(cli.UsageError, match=f"--width {bad}: the width multiplier must be above 0 and at most 4"):
            parse("--width", bad)


def test_flops_count_convolutions_and_dense_layers():
    import keras

    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    # 2 x (8*8 positions x 3 filters x 3*3*2 taps) + 2 x (192 inputs x 5 units).
    assert flops_per_image(keras.Model(inputs, outputs)) == 2 * 8 * 8 * 3 * 18 + 2 * 192 * 5
    assert round(flops_per_image(build_cnn()) / 1e9, 3) == 0.194  # The seed CNN, as the README gives it.


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_dnn_has_the_seed_parameter_count(dropout):
    assert count_params(build_dnn(dropout=dropout)) == (5_532_679, 8_192)


@pytest.mark.parametrize("build", [build_cnn, build_dnn])
def test_models_scale_raw_pixels_themselves(build):
    """A model takes 0-255 pixels: its first layer after the input gives them
    back divided by 255, so no caller scales (or scales twice)."""
    import keras

    model = build()
    pixels = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    scaled = keras.Model(model.inputs, model.layers[1].output)(pixels).numpy()
    np.testing.assert_allclose(scaled, pixels / 255.0, rtol=1e-6)
    assert model.output_shape == (None, 7)


@pytest.mark.parametrize("build", [build_cnn, build_dnn])
def test_save_and_load_give_identical_predictions(tmp_path, build):
    model = build()
    images = np.random.default_rng(0).integers(0, 256, size=(8, 48, 48, 1)).astype("float32")
    before = model.predict(images, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    after = load_model(path).predict(images, verbose=0)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(after.sum(axis=1), 1.0, rtol=1e-5)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(cli.ModelFileError, match="no such model file"):
        load_model(str(tmp_path / "none.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"definitely not a zip file")
    with pytest.raises(cli.ModelFileError, match="not a readable Keras model"):
        load_model(str(bad))


def test_float16_release_copy_is_half_the_size_and_predicts_the_same(tmp_path):
    from ferkit.nets.models import save_float16

    model = build_cnn()
    images = np.random.default_rng(0).integers(0, 256, size=(8, 48, 48, 1)).astype("float32")
    full, half = tmp_path / "full.keras", tmp_path / "half.keras"
    model.save(full)
    save_float16(model, half)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    import keras

    # Plain Keras opens it as float32 layers (a float16 policy would be emulated on a CPU, 20x slower).
    plain = keras.saving.load_model(str(half))
    assert {w.dtype for w in plain.weights} == {"float32"} and plain.dtype_policy.name == "float32"
    assert {l.dtype_policy.name for l in plain.layers} == {"float32"}
    # Each weight is its float16 rounding, and no more changed than that.
    for stored, original in zip(plain.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(stored, original.astype(np.float16).astype(np.float32))
    restored = load_model(str(half), "float32")
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=2e-3)
    assert load_model(str(half)).class_names == load_model(str(full)).class_names


def resnet_parameters(num_classes, width=1.0):
    """build_resnet's parameters counted by hand: (total, BatchNorm statistics)."""
    from ferkit.nets.models import RESNET_STAGES

    filters = [round(f * width) for f, _ in RESNET_STAGES]
    total, statistics, c = 9 * filters[0], 0, filters[0]  # The stem: 3x3, one grey input, no bias.
    for f, (_, blocks) in zip(filters, RESNET_STAGES):
        for block in range(blocks):
            projection = c * f if (c != f or (block == 0 and f != filters[0])) else 0
            total += 4 * c + projection + 9 * c * f + 4 * f + 9 * f * f  # BN, 1x1, conv, BN, conv.
            statistics += 2 * c + 2 * f
            c = f
    total += 4 * c + c * num_classes + num_classes  # The head's BatchNorm and the Dense layer.
    return total, statistics + 2 * c


def test_resnet_has_its_hand_counted_parameters_and_a_pooled_head():
    import keras

    from ferkit.nets.models import build_resnet

    model = build_resnet(num_classes=8)
    assert count_params(model) == resnet_parameters(8) == (2_780_840, 3_776)
    assert count_params(build_resnet(width=0.5)) == resnet_parameters(7, 0.5)
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert model.output_shape == (None, 8)
    # Four stages: 48, 24, 12 and 6 pixels, no dense layer before the classifier.
    assert [model.get_layer(f"stage{s}_1_add").output.shape[1] for s in (1, 2, 3, 4)] == [48, 24, 12, 6]
    assert [l.name for l in model.layers if isinstance(l, keras.layers.Dense)] == ["emotion"]


def test_resnet_trains_a_step_saves_and_reloads(tmp_path):
    from conftest import learnable_faces

    from ferkit.nets.models import build_resnet, save_model

    model = build_resnet(width=0.25)
    images, labels = learnable_faces(4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    model.fit(images.astype("float32"), labels, batch_size=28, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = str(tmp_path / "resnet.keras")
    save_model(model, path)
    loaded = load_model(path)
    assert count_params(loaded) == count_params(model)
    np.testing.assert_allclose(loaded.predict(images[:8].astype("float32"), verbose=0),
                               model.predict(images[:8].astype("float32"), verbose=0), atol=1e-6)
