"""export.py: a trained model to ONNX, parity with Keras, the metadata that
carries the class names, and the errors for bad files and missing tools."""
import os

import numpy as np
import pytest
from conftest import assert_one_line_error, learnable_faces, run_main, run_script

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("onnx") / "cnn.onnx")
    result = run_main("export.py", tiny_model, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def test_export_writes_a_half_size_file_that_matches_keras(tiny_model, exported):
    out, stdout = exported
    assert "top class matches Keras on 100.0%" in stdout
    from ferkit.infer.inference import OnnxModel, Predictor
    from ferkit.nets.models import load_model

    keras_model, onnx_model = load_model(tiny_model, "float32"), OnnxModel(out)
    # float16 weights: about 2 bytes a parameter, half of the float32 file.
    assert 1.9 * keras_model.count_params() < os.path.getsize(out) < 0.55 * 4 * keras_model.count_params()
    assert onnx_model.class_names == keras_model.class_names
    faces, _ = learnable_faces(60, seed=11)  # 420 faces like the validation split's
    expected = Predictor([keras_model], tta="flip")(faces)
    got = Predictor([onnx_model], tta="flip")(faces)
    assert np.abs(expected - got).max() <= 2e-3
    assert np.mean(expected.argmax(1) == got.argmax(1)) >= 0.999


def test_the_graph_takes_any_batch_of_48x48_faces(exported):
    model = onnx.load(exported[0])
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [48, 48, 1] and not dims[0].dim_value
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["weights"] == "float16" and "Neutral" in meta["class_names"]


def test_an_export_that_disagrees_writes_nothing(tiny_model, tmp_path, monkeypatch):
    from ferkit.programs import cli
    import export

    monkeypatch.setattr(export, "MAX_DIFFERENCE", -1.0)  # Nothing can agree this closely.
    out = tmp_path / "never.onnx"
    with pytest.raises(cli.UsageError, match="disagrees with Keras"):
        export.export(tiny_model, str(out))
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_wrong_input_and_missing_names_are_one_line(tmp_path):
    from onnx import TensorProto, helper

    def save(shape, meta, name):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        path = tmp_path / name
        onnx.save(model, path)
        return str(path)

    import matplotlib.cbook

    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    wrong_shape = save([None, 10], {"class_names": '["a"]'}, "other_task.onnx")
    assert_one_line_error(run_main("emotions.py", photo, "--model", wrong_shape), "other_task.onnx", "takes x")
    unnamed = save([None, 48, 48, 1], {}, "unnamed.onnx")
    assert_one_line_error(run_main("emotions.py", photo, "--model", unnamed), "unnamed.onnx", "no class names")


def test_gradient_scripts_say_they_need_keras(exported, tiny_data, tmp_path):
    for script in ("saliency.py", "visualize_filters.py"):
        result = run_main(script, "--model", exported[0], "--data", tiny_data["train"], "--out-dir", str(tmp_path))
        assert_one_line_error(result, "needs the Keras model")


def test_a_missing_exporter_says_what_to_install(tiny_model, tmp_path):
    code = ("import sys; sys.modules['tf2onnx'] = None; sys.argv = ['export.py', sys.argv[1], '--out', sys.argv[2]]; "
            "import runpy; sys.path.insert(0, '.'); runpy.run_path('export.py', run_name='__main__')")
    result = run_script("-c", code, tiny_model, str(tmp_path / "m.onnx"))
    assert_one_line_error(result, "needs tf2onnx", "pip install tf2onnx onnx onnxruntime")


def test_bench_compares_the_runtimes_and_checks_parity(tiny_model, tiny_data, exported):
    result = run_main("bench.py", "parity", "--train", tiny_data["train"], "--model", tiny_model, "--onnx", exported[0])
    assert result.returncode == 0, result.stderr[-3000:]
    agree = float(result.stdout.split("top class the same on ")[1].split("%")[0])
    assert agree >= 90  # The strict parity check is the test above, on 420 faces.
    result = run_main("bench.py", "runtimes", "--model", tiny_model, "--onnx", exported[0], "--faces", "300")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [l for l in result.stdout.splitlines() if l.startswith("runtimes:")]
    assert lines[0].startswith("runtimes: ONNX Runtime float32") and "TensorFlow float32" in lines[1]
    assert "ONNX Runtime / TensorFlow float32:" in result.stdout


def test_litert_export_has_builtin_ops_only_and_matches_keras(tiny_model, tmp_path):
    out = tmp_path / "cnn.tflite"
    result = run_main("export.py", tiny_model, "--format", "litert", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "top class matches Keras on 100.0%" in result.stdout
    flat = out.read_bytes()
    from ferkit.nets.models import load_model

    params = load_model(tiny_model).count_params()
    assert b"Flex" not in flat and 3.9 * params < len(flat) < 4.4 * params  # float32 weights: 4 bytes a parameter
    assert_one_line_error(run_main("export.py", tiny_model, "--format", "litert", "--out", str(tmp_path / "x.onnx")),
                          "must end in .tflite")
    assert_one_line_error(run_main("export.py", tiny_model, "--format", "litert", "--weights", "float16",
                                     "--out", str(tmp_path / "y.tflite")), "float32 weights only")


@pytest.mark.parametrize("name", ["fer2013_cnn", "ferplus_cnn"])
def test_each_released_model_and_its_onnx_copy_give_the_same_probabilities(name):
    """The calibration (temperature, prior shift) lives in the last layer, so
    the .keras file and its ONNX copy agree with no side file: on real face
    crops, random faces and their flip TTA, as emotions.py computes them."""
    from matplotlib import cbook

    from ferkit.programs import cli
    from ferkit.vision.detectors import BlazeFaceDetector
    from ferkit.vision.crops import face_crop
    from ferkit.vision.images import read_image, to_gray
    from ferkit.infer.inference import OnnxModel, Predictor
    from ferkit.nets.models import load_model

    rgb = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    detection = BlazeFaceDetector()(rgb)[0]
    face = face_crop(to_gray(rgb), detection, "blazeface")
    faces = np.concatenate([face[None], np.random.default_rng(0).integers(0, 256, (31, 48, 48, 1), dtype=np.uint8)])
    keras_p = Predictor([load_model(cli.released_model(name), "float32")], tta="flip")(faces)
    onnx_p = Predictor([OnnxModel(cli.released_model(name, prefer_onnx=True))], tta="flip")(faces)
    assert np.abs(keras_p - onnx_p).max() < 2e-3
    assert (keras_p.argmax(1) == onnx_p.argmax(1)).all()
