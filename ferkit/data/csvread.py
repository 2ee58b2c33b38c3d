"""Reading a FER2013 CSV fast: the parser of the four Kaggle layouts
(vectorised NumPy over blocks of lines, in two threads) and the parse cache
that makes a second load take milliseconds. fer2013.load_csv is the way in.
"""
import gzip
import hashlib
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ferkit.errors import DataError
from ferkit.data.dataset import IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS, USAGES, Dataset  # noqa: F401
from ferkit.files import atomic_output

# Header (lower-cased, stripped) -> the role of each column.
LAYOUTS = {
    ("label", "feature"): ("label", "pixels"),  # NTU class competition, train
    ("id", "feature"): ("id", "pixels"),  # NTU class competition, test
    ("emotion", "pixels", "usage"): ("label", "pixels", "usage"),  # fer2013.csv
    ("emotion", "usage", "pixels"): ("label", "usage", "pixels"),  # icml_face_data.csv
    ("emotion", "pixels"): ("label", "pixels"),  # Kaggle challenges train.csv
    ("pixels",): ("pixels",),  # Kaggle challenges test.csv: ids are row numbers
}
KNOWN_HEADERS = " | ".join(",".join(h) for h in LAYOUTS)
CHUNK_LINES = 64  # Rows per vectorized pass: ~0.5 MB of text, so arrays stay in cache.
CACHE_VERSION = b"fer2013-cache-v1"



def read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(path, f"corrupt or truncated gzip data ({e})") from None
    return raw


def parse_csv_bytes(raw, path="<bytes>"):
    """Parse the bytes of a FER2013 CSV; path is only used in error messages."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # UTF-8 byte-order mark, as Excel writes it.
    if not raw[:65536].strip() and not raw.strip():
        raise DataError(path, "file is empty")
    if b'"' in raw:
        raw = raw.replace(b'"', b"")  # Quoted fields: no valid field contains a quote.
    buf = np.frombuffer(raw, np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    line_starts = np.concatenate([[0], newlines + 1])
    line_ends = np.concatenate([newlines, [len(buf)]])
    # Windows line endings: drop the \r before each \n.
    has_cr = line_ends > line_starts
    has_cr[has_cr] = buf[line_ends[has_cr] - 1] == ord("\r")
    line_ends = line_ends - has_cr

    header_bytes = raw[line_starts[0] : line_ends[0]]
    header = tuple(h.strip().lower() for h in header_bytes.decode("utf-8", "replace").split(","))
    if header not in LAYOUTS:
        shown = header_bytes[:60].decode("utf-8", "replace")
        raise DataError(path, f"unknown header {shown!r}; expected one of: {KNOWN_HEADERS}", line=1)
    roles = LAYOUTS[header]

    # Data lines, 1-based line numbers; lines holding only whitespace are skipped.
    starts, ends = line_starts[1:], line_ends[1:]
    numbers = np.arange(2, len(starts) + 2)
    blank = ends - starts < 2 * NUM_PIXELS - 1  # Too short to be a row: look closer.
    blank[blank] = [not raw[s:e].strip() for s, e in zip(starts[blank], ends[blank])]
    starts, ends, numbers = starts[~blank], ends[~blank], numbers[~blank]
    if len(starts) == 0:
        raise DataError(path, "no data rows after the header")

    field_starts, field_ends = _field_spans(buf, starts, ends, numbers, len(roles), path)
    pixel_col = roles.index("pixels")
    images = np.empty((len(starts), NUM_PIXELS), np.uint8)

    def parse_block(lo):
        hi = min(lo + CHUNK_LINES, len(starts))
        field = slice(lo, hi)
        images[field] = _parse_pixels(
            buf, field_starts[field, pixel_col], field_ends[field, pixel_col], numbers[field], path
        )

    # NumPy releases the GIL in its loops, so threads parse blocks in parallel.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(parse_block, range(0, len(starts), CHUNK_LINES)))
    images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)

    def column(role, convert):
        if role not in roles:
            return None
        k = roles.index(role)
        return np.array(
            [convert(raw[s:e].strip(), n) for s, e, n in zip(field_starts[:, k], field_ends[:, k], numbers)]
        )

    def to_label(text, line):
        if text.isdigit() and int(text) < NUM_CLASSES:
            return int(text)
        raise DataError(path, f"label {_show(text)} is not an integer 0-{NUM_CLASSES - 1}", line)

    def to_id(text, line):
        if text.isdigit() and len(text) < 19:
            return int(text)
        raise DataError(path, f"id {_show(text)} is not a non-negative integer", line)

    def to_usage(text, line):
        name = text.decode("utf-8", "replace")
        if name in USAGES:
            return USAGES.index(name)
        raise DataError(path, f"usage {_show(text)} is not one of {', '.join(USAGES)}", line)

    labels = column("label", to_label)
    ids = column("id", to_id)
    usage = column("usage", to_usage)
    return Dataset(
        images=images,
        labels=None if labels is None else labels.astype(np.int8),
        ids=np.arange(len(images), dtype=np.int64) if ids is None else ids.astype(np.int64),
        usage=None if usage is None else usage.astype(np.int8),
    )


def _show(text):
    return repr(text[:20].decode("utf-8", "replace")) if text else "(empty)"


def _field_spans(buf, starts, ends, numbers, num_fields, path):
    """Byte spans (N, num_fields) of each comma-separated field of each line."""
    commas = np.flatnonzero(buf == ord(","))
    first = np.searchsorted(commas, starts)
    count = np.searchsorted(commas, ends) - first
    wrong = np.flatnonzero(count != num_fields - 1)
    if len(wrong):
        i = wrong[0]
        raise DataError(path, f"expected {num_fields} comma-separated fields, found {count[i] + 1}", numbers[i])
    field_starts = np.empty((len(starts), num_fields), np.int64)
    field_ends = np.empty_like(field_starts)
    field_starts[:, 0] = starts
    field_ends[:, -1] = ends
    for k in range(num_fields - 1):
        comma = commas[first + k]
        field_ends[:, k] = comma
        field_starts[:, k + 1] = comma + 1
    return field_starts, field_ends


def _parse_pixels(buf, field_starts, field_ends, numbers, path):
    """Vectorized parse of space-separated pixel fields -> (n, 2304) uint8.

    Works on the bytes of a block of consecutive lines: blanks the bytes
    between pixel fields (labels, ids, line ends), finds where each digit run
    ends, checks that each field holds exactly 2,304 runs, and turns each
    1-3 digit run into a number from the three bytes before its end, with no
    Python int() per pixel. Blocks are small so the arrays stay in cache.
    """
    pad = 3  # Spaces in front, so that "three bytes back" is always valid.
    lo, hi = field_starts[0], field_ends[-1]
    block = np.empty(hi - lo + pad + 1, np.uint8)
    block[:pad] = block[-1] = ord(" ")
    block[pad:-1] = buf[lo:hi]
    starts, ends = field_starts - lo + pad, field_ends - lo + pad
    gap_len = starts[1:] - ends[:-1]
    gaps = np.repeat(ends[:-1] - np.cumsum(np.r_[0, gap_len[:-1]]), gap_len) + np.arange(gap_len.sum())
    block[gaps] = ord(" ")
    digits = block - np.uint8(ord("0"))  # Non-digits wrap around to >= 10.
    is_digit = digits < 10
    if np.count_nonzero(is_digit) + np.count_nonzero(block == ord(" ")) != len(block):
        block[block == ord("\t")] = ord(" ")  # Tabs separate pixels too.
        bad = ~is_digit & (block != ord(" "))
    else:
        bad = None
    if bad is not None and bad.any():
        pos = np.argmax(bad)
        i = np.searchsorted(starts, pos, side="right") - 1
        first, last = pos, pos
        while first > starts[i] and block[first - 1] != ord(" "):
            first -= 1
        while last < ends[i] and block[last] != ord(" "):
            last += 1
        word = bytes(block[first:last])
        raise DataError(path, f"pixel {_show(word)} is not an integer 0-255", numbers[i])
    digits *= is_digit
    run_end = np.flatnonzero(is_digit[:-1] & ~is_digit[1:])  # Last digit of each run.
    per_field = np.searchsorted(run_end, ends) - np.searchsorted(run_end, starts)
    wrong = np.flatnonzero(per_field != NUM_PIXELS)
    if len(wrong):
        i = wrong[0]
        raise DataError(path, f"expected {NUM_PIXELS} pixels, found {per_field[i]}", numbers[i])
    value = digits[run_end].astype(np.uint16)
    value += np.uint16(10) * digits[run_end - 1]
    value += np.uint16(100) * (digits[run_end - 2] * is_digit[run_end - 1])
    long_runs = np.flatnonzero(is_digit[run_end - 1] & is_digit[run_end - 2] & is_digit[run_end - 3])
    for t in long_runs:  # Rare: leading zeros ("0042") or huge numbers.
        first = run_end[t]
        while is_digit[first - 1]:
            first -= 1
        value[t] = min(int(bytes(block[first : run_end[t] + 1])), 65535)
    out_of_range = np.flatnonzero(value > 255)
    if len(out_of_range):
        t = out_of_range[0]
        i = np.searchsorted(starts, run_end[t], side="right") - 1
        first = run_end[t]
        while is_digit[first - 1]:
            first -= 1
        word = bytes(block[first : run_end[t] + 1])
        raise DataError(path, f"pixel {_show(word)} is out of range 0-255", numbers[i])
    return value.astype(np.uint8).reshape(len(starts), NUM_PIXELS)


def cache_dir():
    return os.environ.get("FER2013_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "fer2013"))


def cache_file(path, stat):
    key = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    digest = hashlib.sha256(CACHE_VERSION + key).hexdigest()[:24]
    return os.path.join(cache_dir(), f"{os.path.basename(path)}.{digest}.npz")


def read_cache(cached):
    try:
        with np.load(cached, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, zlib.error):
        return None  # Missing or damaged cache: parse the CSV again.
    optional = lambda k: arrays[k] if k in arrays else None
    if "images" not in arrays or "ids" not in arrays:
        return None
    return Dataset(arrays["images"], optional("labels"), arrays["ids"], optional("usage"))


def write_cache(cached, data):
    arrays = {k: v for k, v in vars(data).items() if v is not None}
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with atomic_output(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError:
        pass  # A read-only or full cache folder only costs speed.


# The validation split every script names, unless told otherwise: training
# holds these faces out, and the figure scripts and benchmarks ask for the same.
