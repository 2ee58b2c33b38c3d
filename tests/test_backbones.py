"""The pretrained backbone: the TensorFlow.js reader and runner, the rebuild
checked against a tiny graph written here (no 145 MB download), the
architecture at two input sizes, the input adapter, the fine-tuning
schedule and a run end to end."""
import base64
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, csv_text, learnable_faces, run_main, write_csv

from ferkit.nets import backbones
from ferkit.nets.tfjs import read_graph_model, run_graph

TINY_STEM, TINY_BLOCKS = (8, 2), ((16, 1), (12, 2))


def tiny_graph(folder, seed=0):
    """A MobileNet v1 of a stem and two blocks as TensorFlow.js writes one:
    BatchNorm folded into each convolution (kernel scaled, an Add of the
    shift) and, after a depthwise one, into a Mul and an Add; ReLU6 as
    Relu, Minimum and Maximum; weights stored as float16. Returns the path
    of its model.json and the float16-rounded weights."""
    rng = np.random.default_rng(seed)
    nodes, weights = [{"name": "input_1", "op": "Placeholder"}], {}
    padding = {"s": base64.b64encode(b"SAME").decode()}

    def const(name, value):
        weights[name] = np.asarray(value, np.float32).astype(np.float16).astype(np.float32)
        nodes.append({"name": name, "op": "Const"})
        return name

    def strides(s):
        return {"list": {"i": ["1", str(s), str(s), "1"]}}

    def relu6(x, name):
        nodes.append({"name": f"{name}/Relu", "op": "Relu", "input": [x]})
        nodes.append({"name": f"{name}/Minimum", "op": "Minimum", "input": [f"{name}/Relu", const(f"{name}/Cast", 6.0)]})
        nodes.append({"name": f"{name}/clip", "op": "Maximum", "input": [f"{name}/Minimum", const(f"{name}/Const_1", 0.0)]})
        return f"{name}/clip"

    def conv(x, name, kernel, stride):
        k = const(f"{name}/convolution/merged_input", rng.normal(0, 0.02, kernel))
        nodes.append({"name": f"{name}_bn/batchnorm_1/mul_1", "op": "Conv2D", "input": [x, k],
                      "attr": {"strides": strides(stride), "padding": padding}})
        shift = const(f"{name}_bn/batchnorm_1/sub", rng.normal(0.5, 0.3, kernel[-1]))
        nodes.append({"name": f"{name}_bn/batchnorm_1/add_1", "op": "Add", "input": [f"{name}_bn/batchnorm_1/mul_1", shift]})
        return relu6(f"{name}_bn/batchnorm_1/add_1", f"{name}_relu")

    def depthwise(x, name, channels, stride):
        k = const(f"{name}/depthwise_kernel", rng.normal(0, 0.05, (3, 3, channels, 1)))
        nodes.append({"name": f"{name}/depthwise", "op": "DepthwiseConv2dNative", "input": [x, k],
                      "attr": {"strides": strides(stride), "padding": padding}})
        scale = const(f"{name}_bn/batchnorm_1/mul", rng.uniform(0.5, 1.5, channels))
        nodes.append({"name": f"{name}_bn/batchnorm_1/mul_1", "op": "Mul", "input": [f"{name}/depthwise", scale]})
        shift = const(f"{name}_bn/batchnorm_1/sub", rng.normal(0.2, 0.3, channels))
        nodes.append({"name": f"{name}_bn/batchnorm_1/add_1", "op": "Add", "input": [f"{name}_bn/batchnorm_1/mul_1", shift]})
        return relu6(f"{name}_bn/batchnorm_1/add_1", f"{name}_relu")

    x = conv("input_1", "conv1", (3, 3, 3, TINY_STEM[0]), TINY_STEM[1])
    channels = TINY_STEM[0]
    for i, (filters, stride) in enumerate(TINY_BLOCKS, start=1):
        x = depthwise(x, f"conv_dw_{i}", channels, stride)
        x = conv(x, f"conv_pw_{i}", (1, 1, channels, filters), 1)
        channels = filters
    axes = "global_pooling/Mean/reduction_indices"
    nodes.append({"name": axes, "op": "Const"})
    nodes.append({"name": backbones.POOLED_NODE, "op": "Mean", "input": [x, axes]})
    manifest = [{"name": n, "shape": list(w.shape), "dtype": "float32", "quantization": {"dtype": "float16",
                 "original_dtype": "float32"}} for n, w in weights.items()]
    manifest.append({"name": axes, "shape": [2], "dtype": "int32"})
    data = b"".join(w.astype(np.float16).tobytes() for w in weights.values()) + np.array([1, 2], np.int32).tobytes()
    (folder / "tiny.bin").write_bytes(data)
    spec = {"format": "graph-model", "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["tiny.bin"], "weights": manifest}]}
    (folder / "tiny.json").write_text(json.dumps(spec))
    return str(folder / "tiny.json"), weights


def test_the_reader_dequantises_float16_weights_and_reads_the_architecture(tmp_path):
    path, written = tiny_graph(tmp_path)
    nodes, weights = read_graph_model(path)
    for name, value in written.items():
        np.testing.assert_array_equal(weights[name], value)
    assert weights["global_pooling/Mean/reduction_indices"].tolist() == [1, 2]
    assert backbones.graph_architecture(nodes, weights) == (TINY_STEM, TINY_BLOCKS)


def test_the_rebuild_matches_the_graph_and_the_check_catches_a_wrong_weight(tmp_path):
    nodes, weights = read_graph_model(tiny_graph(tmp_path)[0])
    rgb = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3))
    model, by_layer = backbones.rebuild(nodes, weights, 32)
    difference, scale = backbones.largest_difference(nodes, weights, model, rgb)
    assert scale > 0.5 and difference < 1e-5 * scale
    # A graph run of its own says the same: the Mul/Add BatchNorm was restored, not skipped.
    (pooled,) = run_graph(nodes, weights, {"input_1": rgb.astype(np.float32)}, [backbones.POOLED_NODE])
    assert pooled.shape == (4, TINY_BLOCKS[-1][0])
    # Drop one BatchNorm's shift and the check sees it.
    gamma, beta, mean, variance = by_layer["conv_pw_2_bn"]
    model.get_layer("conv_pw_2_bn").set_weights([gamma, np.zeros_like(beta), mean, variance])
    assert backbones.largest_difference(nodes, weights, model, rgb)[0] > 0.1 * scale


def test_a_missing_shard_is_one_clear_error(tmp_path):
    from ferkit.errors import ModelFileError

    path, _ = tiny_graph(tmp_path)
    (tmp_path / "tiny.bin").unlink()
    with pytest.raises(ModelFileError, match="tiny.json: a weight shard is missing"):
        read_graph_model(path)


@pytest.mark.parametrize("size", [64, 112])
def test_faceres_has_mobilenets_parameters_at_each_input_size(size):
    import keras

    from ferkit.nets.models import ARCHITECTURES, count_params

    model = ARCHITECTURES["faceres"](num_classes=8, input_size=size)
    mobilenet = keras.applications.MobileNet(weights=None, include_top=False, input_shape=(size, size, 3))
    assert count_params(model) == (mobilenet.count_params() + 1024 * 8 + 8, 21_888) == (3_237_064, 21_888)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 8)
    side = -(-size // 32)  # Five stride-2 layers, each rounding up ("same" padding): 112 px -> 4.
    assert model.get_layer("conv_pw_13_relu").output.shape[1:] == (side, side, 1024)


def test_the_input_adapter_gives_three_equal_channels_in_the_pixel_range():
    import keras

    from ferkit.nets.backbones import build_faceres

    model = build_faceres(input_size=96)
    adapter = keras.Model(model.input, model.get_layer("grey_to_rgb").output)
    face = np.tile(np.linspace(0, 255, 48, dtype=np.float32), (48, 1))[None, :, :, None]  # A left-to-right ramp.
    rgb = np.asarray(adapter(face))
    assert rgb.shape == (1, 96, 96, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    assert 0 <= rgb.min() < 0.01 and 0.99 < rgb.max() <= 1  # [0, 1]; the first kernel carries the 255.
    assert abs(255 * rgb.mean() - face.mean()) < 1.0
    assert np.all(np.diff(rgb[0, 10, :, 0]) >= 0)  # Still a ramp, left to right.


def test_restoring_batch_norm_statistics_keeps_every_output():
    from ferkit.nets.backbones import build_faceres, restore_batch_norm

    model = build_faceres(input_size=64)
    faces = np.random.default_rng(0).integers(0, 256, (48, 48, 48, 1)).astype(np.float32)
    before = np.asarray(model(faces, training=False))
    assert restore_batch_norm(model, faces, batch_size=16) == 27
    after = np.asarray(model(faces, training=False))
    np.testing.assert_allclose(after, before, atol=2e-5)
    mean = model.get_layer("conv_pw_3_bn").moving_mean.numpy()
    assert np.abs(mean).max() > 1e-3  # Measured, no longer the initial zeros.


def test_fine_tuning_moves_the_head_first_and_the_backbone_only_when_unfrozen():
    import keras

    from ferkit.train.optim import compile_model
    from ferkit.train.recipes import PRESETS

    recipe = dict(PRESETS["backbone"], head_epochs=1, freeze_bn=False)
    model = compile_model("faceres", recipe, steps_per_epoch=2, num_classes=8,
                          backbone={"input_size": 64, "weights": None})
    faces, labels = learnable_faces(n_per_class=4)
    x, y = faces[:32].astype(np.float32), keras.utils.to_categorical(labels[:32] % 8, 8)

    def snapshot():
        return {name: model.get_layer(name).get_weights()[0].copy() for name in ("conv1", "conv_pw_13", "emotion")}

    start = snapshot()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # Two steps: the head's epoch.
    frozen = snapshot()
    assert not np.array_equal(frozen["emotion"], start["emotion"])
    for name in ("conv1", "conv_pw_13"):  # Not a step, not a weight decay.
        np.testing.assert_array_equal(frozen[name], start[name])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for name in ("conv1", "conv_pw_13"):
        assert not np.array_equal(snapshot()[name], frozen[name])


@pytest.fixture
def random_backbone(tmp_path):
    """A weights file of random backbone weights, as the converter writes one."""
    from ferkit.nets.backbones import build_faceres, is_backbone_layer, save_weights

    model = build_faceres(input_size=64)
    path = str(tmp_path / "faceres.npz")
    save_weights({l.name: l.get_weights() for l in model.layers if is_backbone_layer(l.name) and l.weights}, path)
    return path


def test_a_backbone_run_end_to_end_saves_a_model_every_script_loads(tmp_path, random_backbone):
    from ferkit.nets.models import load_model

    faces, labels = learnable_faces(n_per_class=10)
    train = write_csv(tmp_path / "train.csv", csv_text("ntu_train", faces, labels))
    out = tmp_path / "m.keras"
    result = run_main("train_cnn.py", "--arch", "faceres", "--preset", "backbone", "--train", train, "--epochs", "2",
                      "--input-size", "64", "--batch-size", "32", "--backbone-weights", random_backbone,
                      "--out", str(out), "--curves", "")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backbone: faceres at 64 px" in result.stdout and "precision: float32" in result.stdout
    model = load_model(str(out))
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    probabilities = np.asarray(model(faces[:4].astype(np.float32)))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)


def test_a_backbone_without_its_weights_is_one_line(tmp_path, tiny_data):
    missing = tmp_path / "nowhere.npz"
    result = run_main("train_cnn.py", "--arch", "faceres", "--preset", "backbone", "--train", tiny_data["train"],
                      "--backbone-weights", str(missing), "--out", str(tmp_path / "m.keras"))
    assert_one_line_error(result, f"{missing}: no converted faceres weights; run models/convert_backbones.py")
    assert not (tmp_path / "m.keras").exists()


def test_the_gpu_script_runs_a_short_fine_tune_on_the_cpu(tmp_path, random_backbone):
    """finetune_gpu.sh, as the GPU would run it, at a small size and two epochs on tiny FER+ files."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, write_ferplus_pair

    faces, votes, _, _ = write_ferplus_pair(str(tmp_path), n_per_class=8)
    env = dict(os.environ, PYTHON=sys.executable, TRAIN=faces, FERPLUS=votes, BACKBONE_WEIGHTS=random_backbone,
               INPUT_SIZE="64")
    out = tmp_path / "run"
    result = subprocess.run(["bash", os.path.join(ROOT, "finetune_gpu.sh"), str(out), "--epochs", "2",
                             "--batch-size", "16", "--curves", ""], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "input_size=64" in result.stdout and "epoch 2/2" in result.stdout and (out / "model.keras").exists()
    missing = subprocess.run(["bash", os.path.join(ROOT, "finetune_gpu.sh"), str(out)],
                             env=dict(env, TRAIN=str(tmp_path / "none.csv")), capture_output=True, text=True)
    assert missing.returncode == 2 and "none.csv: not here" in missing.stderr
