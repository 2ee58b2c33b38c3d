"""quantize.py: int8 copies of an exported classifier, what they quantise,
the metadata they keep, their agreement with the float file, and the errors
for flags that cannot work."""
import json
import os

import numpy as np
import pytest
from conftest import assert_one_line_error, learnable_faces, run_main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def float_onnx(tiny_model, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("float") / "cnn.onnx")
    result = run_main("export.py", tiny_model, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def ops(path):
    return [node.op_type for node in onnx.load(path).graph.node]


def probabilities(path, faces):
    from ferkit.infer.inference import OnnxModel, Predictor

    return Predictor([OnnxModel(path)], "flip")(faces)


def test_dense_layers_int8_keep_the_answers_and_the_metadata(float_onnx, tiny_data, tmp_path):
    out = str(tmp_path / "cnn.int8.onnx")
    result = run_main("quantize.py", float_onnx, "--train", tiny_data["train"], "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {out}" in result.stdout and "dense layers int8" in result.stdout
    assert "top class the same on" in result.stdout and "int8 - float: accuracy" in result.stdout
    # The dense layers' weights are int8, the convolutions untouched.
    kinds = ops(out)
    assert kinds.count("MatMulInteger") == 3 and "MatMul" not in kinds and "QuantizeLinear" not in kinds
    assert kinds.count("Conv") == 6
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta["weights"] == "int8" and meta["source"] == "cnn.onnx"
    assert json.loads(meta["class_names"])[-1] == "Neutral"
    card = json.loads(meta["card"])
    assert card["int8"] == {"source": "cnn.onnx", "dense": "dynamic", "convolutions": "float32"}
    assert card["config"]["arch"] == "cnn"  # The training card travels on.
    from ferkit.nets.card import card_lines, read_card

    assert "int8: convolutions=float32, dense=dynamic, source=cnn.onnx" in card_lines(read_card(out))  # ferkit info
    faces, _ = learnable_faces(20, seed=5)
    expected, got = probabilities(float_onnx, faces), probabilities(out, faces)
    assert np.abs(expected - got).max() < 0.05 and np.mean(expected.argmax(1) == got.argmax(1)) >= 0.95


def test_convolutions_quantised_on_request_but_those_kept_float(float_onnx, tiny_data, tmp_path):
    out = str(tmp_path / "all.int8.onnx")
    result = run_main("quantize.py", float_onnx, "--train", tiny_data["train"], "--out", out, "--convolutions",
                      "--keep-float", "conv1_1", "--faces", "64")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "calibrated on 64 training faces, float: conv1_1" in result.stdout
    graph = onnx.load(out).graph
    made_by = {output: node for node in graph.node for output in node.output}
    convs = {node.name: node for node in graph.node if node.op_type == "Conv"}
    assert len(convs) == 6
    # A quantised convolution's weight comes through DequantizeLinear; the one kept float reads its weight directly.
    quantised = {name: node.input[1] in made_by and made_by[node.input[1]].op_type == "DequantizeLinear"
                 for name, node in convs.items()}
    assert [name for name, q in quantised.items() if not q] == [n for n in convs if "conv1_1" in n]
    card = json.loads({p.key: p.value for p in onnx.load(out).metadata_props}["card"])["int8"]
    assert card["convolutions"] == "static" and card["calibration_faces"] == 64 and card["float_convolutions"] == ["conv1_1"]


def test_flags_that_cannot_work_are_one_line_errors(float_onnx, tiny_model, tiny_data, tmp_path):
    train = ["--train", tiny_data["train"]]
    assert_one_line_error(run_main("quantize.py", float_onnx, *train, "--keep-float", "conv1_1"), "needs --convolutions")
    assert_one_line_error(run_main("quantize.py", float_onnx, *train, "--convolutions", "--keep-float", "conv9_9",
                                   "--out", str(tmp_path / "x.onnx")),
                          "no convolution named conv9_9", "conv1_1")
    assert not (tmp_path / "x.onnx").exists()
    assert_one_line_error(run_main("quantize.py", tiny_model, *train), "takes a float .onnx file")
    assert_one_line_error(run_main("quantize.py", str(tmp_path / "missing.onnx"), *train), "no such model file")
    assert_one_line_error(run_main("quantize.py", float_onnx, *train, "--out", float_onnx), "other than the model")


def test_the_int8_copy_is_the_default_where_it_exists(tmp_path, monkeypatch):
    from ferkit import paths

    monkeypatch.setattr(paths, "MODELS_DIR", str(tmp_path))
    for ext in (".keras", ".onnx"):
        (tmp_path / f"m{ext}").write_bytes(b"x")
    assert paths.released_model("m", prefer_onnx=True, int8=True) == str(tmp_path / "m.onnx")
    (tmp_path / "m.int8.onnx").write_bytes(b"x")
    assert paths.released_model("m", prefer_onnx=True, int8=True) == str(tmp_path / "m.int8.onnx")
    assert paths.released_model("m", prefer_onnx=True) == str(tmp_path / "m.onnx")


def test_float16_weights_are_folded_to_float32_for_the_quantiser(float_onnx):
    from ferkit.infer.quantize import conv_layers, float32_initializers

    model = onnx.load(float_onnx)
    assert any(node.op_type == "Cast" for node in model.graph.node)  # export.py stores float16 weights.
    folded = float32_initializers(model)
    assert not any(node.op_type == "Cast" and "float16" in node.input[0] for node in folded.graph.node)
    assert all(w.data_type == onnx.TensorProto.FLOAT for w in folded.graph.initializer if w.dims and len(w.dims) > 1)
    assert list(conv_layers(folded)) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2"]
