"""fer2013.py: every Kaggle layout, the splits, the cache and each bad input."""
import os

import numpy as np
import pytest
from conftest import csv_text, random_faces, write_csv

from ferkit.data import fer2013
from ferkit.data.fer2013 import DataError, load_csv, split_indices


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["ntu_train", "ntu_test", "fer2013", "icml", "kaggle_train", "kaggle_test"])
def test_every_layout_round_trips(tmp_path, layout, gz):
    images, labels = random_faces(5, seed=3)
    usage = np.array([0, 0, 1, 2, 1])
    ids = np.array([10, 11, 12, 13, 14])
    path = write_csv(tmp_path / "f.csv", csv_text(layout, images, labels, ids, usage), gz=gz)
    data = load_csv(path, cache=False)
    assert data.images.shape == (5, 48, 48, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images, images)
    if layout in ("ntu_train", "fer2013", "icml", "kaggle_train"):
        np.testing.assert_array_equal(data.labels, labels)
    else:
        assert data.labels is None
    np.testing.assert_array_equal(data.ids, ids if layout == "ntu_test" else np.arange(5))
    if layout in ("fer2013", "icml"):
        np.testing.assert_array_equal(data.usage, usage)
    else:
        assert data.usage is None


def test_tolerates_bom_crlf_quotes_blank_lines_and_leading_zeros(tmp_path):
    images, labels = random_faces(3, seed=4)
    text = csv_text("ntu_train", images, labels)
    lines = text.splitlines()
    lines[1] = lines[1].replace(",", ',"', 1) + '"'  # Quoted pixel field.
    lines[2] = lines[2].replace(" ", "\t", 5)  # Tabs between pixels.
    first = lines[3].split(",")[1].split(" ")
    first[0] = f"{int(first[0]):04d}"  # "0042" is still 42.
    lines[3] = lines[3].split(",")[0] + "," + " ".join(first)
    raw = "\ufeff" + "\r\n".join(lines[:2] + [""] + lines[2:]) + "\r\n\r\n"
    data = load_csv(write_csv(tmp_path / "f.csv", raw), cache=False)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)


def test_limit_keeps_first_rows(tmp_path):
    images, labels = random_faces(6)
    data = load_csv(write_csv(tmp_path / "f.csv", csv_text("ntu_train", images, labels)), limit=4)
    assert len(data) == 4
    np.testing.assert_array_equal(data.labels, labels[:4])


def test_cache_gives_same_arrays_and_notices_changes(tmp_path, monkeypatch):
    images, labels = random_faces(4, seed=5)
    path = write_csv(tmp_path / "f.csv", csv_text("ntu_train", images, labels))
    first = load_csv(path)
    from ferkit.data import csvread

    assert os.listdir(csvread.cache_dir())
    # The second load comes from the cache: the parser must not run.
    parser = csvread.parse_csv_bytes
    monkeypatch.setattr(csvread, "parse_csv_bytes", lambda *a: pytest.fail("parsed again, the cache unread"))
    second = load_csv(path)
    monkeypatch.setattr(csvread, "parse_csv_bytes", parser)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    new_images, new_labels = random_faces(4, seed=6)
    write_csv(path, csv_text("ntu_train", new_images, new_labels) + "\n")  # Other size, other key.
    np.testing.assert_array_equal(load_csv(path).images, new_images)


def test_stratified_split_is_seeded_and_keeps_class_shares():
    labels = np.repeat(np.arange(7), [40, 10, 40, 70, 50, 30, 50])
    data = fer2013.Dataset(np.zeros((len(labels), 48, 48, 1), np.uint8), labels.astype(np.int8),
                           np.arange(len(labels)), None)
    train, val = split_indices(data, 0.1, seed=1)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    np.testing.assert_array_equal(np.bincount(labels[val]), [4, 1, 4, 7, 5, 3, 5])
    np.testing.assert_array_equal(val, split_indices(data, 0.1, seed=1)[1])
    assert not np.array_equal(val, split_indices(data, 0.1, seed=2)[1])


def test_usage_column_decides_the_split(tmp_path):
    images, labels = random_faces(6)
    usage = np.array([0, 1, 2, 0, 1, 0])
    data = load_csv(write_csv(tmp_path / "f.csv", csv_text("fer2013", images, labels, usage=usage)))
    train, val = split_indices(data, 0.5, seed=0)
    np.testing.assert_array_equal(train, [0, 3, 5])
    np.testing.assert_array_equal(val, [1, 4])  # PrivateTest (row 2) is held out.


def good_rows(n=3):
    images, labels = random_faces(n, seed=7)
    return csv_text("ntu_train", images, labels).splitlines()


def replace_pixel(line, index, value):
    label, pixels = line.split(",")
    values = pixels.split(" ")
    values[index] = value
    return label + "," + " ".join(values)


def bad_case(name):
    """(file content or None for a missing file, expected message fragments)."""
    lines = good_rows()
    if name == "missing":
        return None, ["no such file"]
    if name == "empty":
        return "", ["file is empty"]
    if name == "unknown header":
        return "\n".join(["a,b,c"] + lines[1:]), ["line 1", "unknown header"]
    if name == "2303 pixels":
        lines[2] = lines[2].rsplit(" ", 1)[0]
        return "\n".join(lines), ["line 3", "expected 2304 pixels, found 2303"]
    if name == "2305 pixels":
        lines[3] = lines[3] + " 7"
        return "\n".join(lines), ["line 4", "expected 2304 pixels, found 2305"]
    if name == "label 9":
        lines[2] = "9" + lines[2][1:]
        return "\n".join(lines), ["line 3", "label '9'"]
    if name == "pixel 256":
        lines[1] = replace_pixel(lines[1], 100, "256")
        return "\n".join(lines), ["line 2", "'256' is out of range"]
    if name == "pixel x":
        lines[3] = replace_pixel(lines[3], 5, "x")
        return "\n".join(lines), ["line 4", "pixel 'x'"]
    if name == "pixel -3":
        lines[3] = replace_pixel(lines[3], 5, "-3")
        return "\n".join(lines), ["line 4", "pixel '-3'"]
    if name == "truncated row":
        return "\n".join(lines)[: -4000], ["line 4", "expected 2304 pixels"]
    if name == "extra field":
        lines[2] = lines[2] + ",Training"
        return "\n".join(lines), ["line 3", "expected 2 comma-separated fields, found 3"]
    raise KeyError(name)


BAD_CASES = ["missing", "empty", "unknown header", "2303 pixels", "2305 pixels", "label 9", "pixel 256",
             "pixel x", "pixel -3", "truncated row", "extra field"]


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_names_file_line_and_problem(tmp_path, name):
    content, fragments = bad_case(name)
    path = str(tmp_path / "bad.csv")
    if content is not None:
        write_csv(path, content)
    with pytest.raises(DataError) as error:
        load_csv(path, cache=False)
    message = str(error.value)
    assert message.startswith(path) and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_csv(str(path), cache=False)


def test_labels_key(tmp_path):
    key = tmp_path / "k.csv"
    key.write_text("id,label\n0,3\n1,6\n")
    assert fer2013.load_labels(str(key)) == {0: 3, 1: 6}
    key.write_text("id,label\n0,3\n1,x\n")
    with pytest.raises(DataError, match="line 3"):
        fer2013.load_labels(str(key))
