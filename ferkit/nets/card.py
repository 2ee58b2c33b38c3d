"""Model cards: what a model file says about how it was made.

Every `.keras` file training writes carries a `card.json` entry (beside
`labels.json`, an entry Keras' loader ignores), and export.py copies it into
the ONNX file's metadata under `card`: the training configuration as run
(config.TrainConfig and the recipe it resolved to), the data files'
fingerprints (size and SHA-256), the commit, the epoch kept and its
validation scores. calibrate.py adds its corrections. `ferkit info MODEL`
prints it, for an .onnx file without TensorFlow. Nothing here imports Keras.
"""
import datetime
import hashlib
import json
import os
import subprocess
import zipfile

from ferkit.errors import ModelFileError

CARD_ENTRY = "card.json"  # In a .keras file (a zip).
ONNX_KEY = "card"  # In an ONNX file's metadata.


def fingerprint(path):
    """{file, bytes, sha256} of a file, or None for no path."""
    if not path:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def git_commit():
    """The repository's commit, with '+changes' when the tree differs from
    it; None outside a clone."""
    from ferkit.paths import REPO_ROOT

    def git(*args):
        return subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def jsonable(value):
    """Tuples as lists, everything else as JSON takes it or as its text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def training_card(config, recipe, data_files):
    """The card of a training run, before it keeps an epoch: config a
    config.TrainConfig, recipe what recipes.settings_from resolved,
    data_files {role: path} of what it read."""
    from ferkit import __version__

    return {
        "made_by": "train_cnn.py / train_dnn.py",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ferkit": __version__,
        "commit": git_commit(),
        "config": jsonable(config.as_dict()),
        "recipe": jsonable(recipe),
        "data": {role: fingerprint(path) for role, path in data_files.items() if path},
    }


def with_epoch(card, row):
    """The card with the epoch a run keeps and that epoch's validation
    scores (a row of the epoch log)."""
    scores = {key[len("val_"):]: round(float(value), 6) for key, value in row.items()
              if key.startswith("val_") and value not in (None, "")}
    return {**card, "epoch": int(row["epoch"]), "validation": scores}


def write_keras_card(path, card):
    """Put the card into a .keras file, replacing any it had (a zip cannot
    drop an entry in place, so the file is rewritten beside and renamed)."""
    from ferkit.files import atomic_output

    data = json.dumps(card, indent=1, sort_keys=True)
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                if item.filename != CARD_ENTRY:
                    zout.writestr(item, zin.read(item.filename))
            zout.writestr(CARD_ENTRY, data)


def read_card(path):
    """The card of a .keras or .onnx file, or None where it has none."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file")
    if path.lower().endswith(".onnx"):
        text = onnx_metadata(path).get(ONNX_KEY)
    else:
        try:
            with zipfile.ZipFile(path) as z:
                text = z.read(CARD_ENTRY).decode() if CARD_ENTRY in z.namelist() else None
        except (OSError, zipfile.BadZipFile) as e:
            raise ModelFileError(f"{path}: not a readable Keras model ({e})") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelFileError(f"{path}: its card is not JSON ({e})") from None


def onnx_metadata(path):
    """An ONNX file's metadata, through ONNX Runtime (no TensorFlow)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for a damaged file.
        raise ModelFileError(f"{path}: not a readable ONNX model ({str(e).strip().splitlines()[0][:160]})") from None
    return dict(session.get_modelmeta().custom_metadata_map)


def keras_class_names(path):
    try:
        with zipfile.ZipFile(path) as z:
            if "labels.json" in z.namelist():
                return json.loads(z.read("labels.json"))["class_names"]
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise ModelFileError(f"{path}: not a readable Keras model ({e})") from None
    return None


def describe(path):
    """The lines `ferkit info` prints for a model file."""
    path = os.fspath(path)
    card = read_card(path)
    if path.lower().endswith(".onnx"):
        classes = json.loads(onnx_metadata(path).get("class_names") or "null")
    else:
        classes = keras_class_names(path)
    lines = [f"{path}: {os.path.getsize(path):,} bytes"]
    if classes:
        lines.append(f"classes: {', '.join(classes)}")
    if card is None:
        return lines + ["card: none (a file made before cards, or not by this project)"]
    return lines + card_lines(card)


def card_lines(card):
    """A card as readable lines; a calibrated model's source card follows, indented."""
    lines = [f"{key.replace('_', ' ')}: {card[key]}" for key in ("made_by", "created", "ferkit", "commit", "note")
             if card.get(key)]
    if "epoch" in card:
        scores = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in sorted(card.get("validation", {}).items()))
        lines.append(f"kept: epoch {card['epoch']}" + (f"; validation {scores}" if scores else ""))
    for role, data in sorted((card.get("data") or {}).items()):
        if data and "sha256" in data:
            lines.append(f"data ({role}): {data['file']}, {data['bytes']:,} bytes, sha256 {data['sha256'][:16]}...")
        elif data:
            lines.append(f"data ({role}): {data.get('file')}" + (f" ({data['note']})" if data.get("note") else ""))
    if card.get("config"):
        shown = {k: v for k, v in card["config"].items() if v not in (None, False, [], "")}
        lines.append("config: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    for key in ("recipe", "calibration", "scores", "int8"):
        if card.get(key):
            lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in sorted(card[key].items())))
    lines += [f"command: {command}" for command in card.get("commands", [])]
    if card.get("source"):
        lines.append(f"made from: {card['source'].get('file')}" + (", whose card:" if card.get("source_card") else ""))
        lines += ["  " + line for line in card_lines(card.get("source_card") or {})]
    return lines
