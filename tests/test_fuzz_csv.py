"""Property-based: malformed CSVs give a correct parse or one clear DataError.

A deliberately plain reference parser states the format's rules; load_csv's
vectorized parser must agree with it on every input hypothesis invents, and
must never raise anything but DataError."""
import numpy as np
from conftest import csv_text, random_faces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferkit.data.csvread import LAYOUTS, parse_csv_bytes
from ferkit.data.fer2013 import NUM_CLASSES, USAGES, DataError

PATH = "fuzz.csv"


def reference_parse(raw):
    """The rules, one line at a time: returns (images, labels, ids, usage)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    raw = raw.replace(b'"', b"")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in raw.split(b"\n")]
    header = tuple(h.strip().lower() for h in lines[0].decode("utf-8", "replace").split(","))
    if header not in LAYOUTS:
        raise DataError(PATH, "unknown header")
    roles = LAYOUTS[header]
    images, labels, ids, usage = [], [], [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split(b",")
        if len(fields) != len(roles):
            raise DataError(PATH, "fields")
        values = dict(zip(roles, fields))
        tokens = values["pixels"].replace(b"\t", b" ").split(b" ")
        pixels = [t for t in tokens if t != b""]
        if any(not t.isdigit() for t in pixels) or len(pixels) != 2304 or any(int(t) > 255 for t in pixels):
            raise DataError(PATH, "pixels")
        images.append([int(t) for t in pixels])
        if "label" in values:
            text = values["label"].strip()
            if not (text.isdigit() and int(text) < NUM_CLASSES):
                raise DataError(PATH, "label")
            labels.append(int(text))
        if "id" in values:
            text = values["id"].strip()
            if not (text.isdigit() and len(text) < 19):
                raise DataError(PATH, "id")
            ids.append(int(text))
        if "usage" in values:
            name = values["usage"].strip().decode("utf-8", "replace")
            if name not in USAGES:
                raise DataError(PATH, "usage")
            usage.append(USAGES.index(name))
    if not images:
        raise DataError(PATH, "empty")
    return np.array(images), labels, ids, usage


def base_csv(layout, seed):
    images, labels = random_faces(2, seed=seed)
    images[0, 0, :3, 0] = [0, 7, 255]  # One-, two- and three-digit pixels.
    return csv_text(layout, images, labels, ids=np.array([5, 9]), usage=np.array([0, 1])).encode()


JUNK = st.sampled_from([b"", b" ", b"\t", b",", b"\n", b"\r\n", b"\r", b'"', b"\xef\xbb\xbf", b"\xff\xfe", b"x", b"-1",
                        b"256", b"99999999999999999999", b"0042", b"1.5", b"\x00", b"\xe9", b"  ", b"\n\n", b"7"])


@st.composite
def mangled_csv(draw):
    raw = bytearray(base_csv(draw(st.sampled_from(["ntu_train", "ntu_test", "fer2013", "icml", "kaggle_test"])),
                             draw(st.integers(0, 3))))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "crlf", "bom", "reencode"]))
        at = draw(st.integers(0, len(raw)))
        if action == "insert":
            raw[at:at] = draw(JUNK)
        elif action == "delete":
            del raw[at : at + draw(st.integers(1, 8))]
        elif action == "replace":
            junk = draw(JUNK)
            raw[at : at + len(junk)] = junk
        elif action == "truncate":
            del raw[at:]
        elif action == "crlf":
            raw = bytearray(bytes(raw).replace(b"\n", b"\r\n"))
        elif action == "bom":
            raw[0:0] = b"\xef\xbb\xbf"
        else:
            raw = bytearray(bytes(raw).decode("latin-1").encode("utf-16"))
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_csv())
def test_load_csv_agrees_with_the_reference_or_raises_one_clear_error(raw):
    try:
        expected = reference_parse(raw)
    except DataError:
        expected = None
    try:
        data = parse_csv_bytes(raw, PATH)
    except DataError as error:
        message = str(error)
        assert message.startswith(PATH) and "\n" not in message
        assert expected is None, f"load_csv rejected a valid file: {message}"
        return
    assert expected is not None, "load_csv accepted a file the rules reject"
    images, labels, ids, usage = expected
    np.testing.assert_array_equal(data.images.reshape(len(images), -1), images)
    if labels:
        np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.ids, ids if ids else np.arange(len(images)))
    if usage:
        np.testing.assert_array_equal(data.usage, usage)
