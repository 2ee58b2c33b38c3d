"""Write the released models' cards into their files (.keras and .onnx).

    python models/write_cards.py

The released models were trained before model files carried a card
(ferkit/nets/card.py), so their cards are written here from their records: the
commands, logs and figures in models/README.md and report/README.md. Each
is marked as such (`note`), and names its data files without fingerprints,
which were not taken at the time. A model trained now carries its own card.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ferkit.nets import card as cards  # noqa: E402

NOTE = ("written on 2026-12-08 from models/README.md and report/README.md: the run predates model cards, so its "
        "data files are named without fingerprints")

FER2013 = {
    "made_by": "train_cnn.py, then models.save_float16",
    "created": "2026-11 (the run)",
    "note": NOTE,
    "commands": ["python train_cnn.py --preset long --erase 0 0 --precision auto --train data/train.csv.gz "
                 "--out runs/long_noerase/cnn.keras",
                 "models.save_float16(models.load_model('runs/long_noerase/cnn.keras'), 'models/fer2013_cnn.keras')"],
    "config": {"arch": "cnn", "preset": "long", "train": "data/train.csv.gz", "erase": "0 0", "precision": "auto",
               "seed": 0, "select": "accuracy", "val_split": 0.1, "split_seed": 0},
    "recipe": {"epochs": 120, "batch_size": 128, "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05,
               "schedule": "cosine", "warmup_epochs": 2, "label_smoothing": 0.1, "augment": [10, 0.1, 0.1],
               "precision": "bfloat16", "cpu": "2 cores, AVX512-BF16"},
    "data": {"train": {"file": "train.csv.gz", "note": "NTU ML2017 HW3 layout; a seeded, stratified 10% validation "
                                                       "split (2,872 faces) held out"}},
    "epoch": 120,
    "validation": {"accuracy": 0.6821, "accuracy_flip": 0.6856},
    "scores": {"public_flip_tta": 0.6812, "public_no_tta": 0.6670, "public_tta_tencrop": 0.6888,
               "on": "Kaggle public part, ids 0-3588, this float16 file"},
}

FERPLUS = {
    "made_by": "train_cnn.py (a logit-adjusted fine-tune of the previous release), then calibrate.py and export.py",
    "created": "2026-11 (the run)",
    "note": NOTE,
    "commands": ["git show e18d8b1:models/ferplus_cnn.keras > runs/ferplus_previous.keras",
                 "python train_cnn.py --preset ferplus --train data/fer2013.csv.gz --ferplus data/fer2013new.csv "
                 "--label-mode crossentropy --init-from runs/ferplus_previous.keras --epochs 15 --lr 3e-4 --seed 0 "
                 "--select mean_recall --balance logit-adjust --tau 1 --out runs/ft_la/cnn.keras",
                 "python calibrate.py --model runs/ft_la/cnn.keras --train data/fer2013.csv.gz "
                 "--ferplus data/fer2013new.csv --tau -0.5 --float16 --out models/ferplus_cnn.keras",
                 "python export.py models/ferplus_cnn.keras"],
    "config": {"arch": "cnn", "preset": "ferplus", "train": "data/fer2013.csv.gz", "ferplus": "data/fer2013new.csv",
               "label_mode": "crossentropy", "balance": "logit-adjust", "tau": 1.0, "select": "mean_recall",
               "init_from": "the previous FER+ release (90 epochs, preset ferplus)", "seed": 0, "precision": "auto"},
    "recipe": {"epochs": 15, "lr": 0.0003, "batch_size": 128, "optimizer": "adamw", "weight_decay": 0.05,
               "schedule": "cosine", "label_smoothing": 0.1, "precision": "bfloat16",
               "cpu": "2 cores, Intel Xeon with AMX"},
    "data": {"train": {"file": "fer2013.csv.gz", "note": "Kaggle's fer2013.csv layout; Training rows train, "
                                                         "PublicTest validates"},
             "ferplus": {"file": "fer2013new.csv", "note": "FER+'s ten-annotator votes"}},
    "epoch": 14,
    "validation": {"accuracy": 0.7183, "mean_recall": 0.7907, "note": "as the loss leaves the model, no prior"},
    "calibration": {"tau": -0.5, "temperature": 0.4983, "tta": "flip",
                    "chosen_on": "3,199 PublicTest faces (FER+ majority labels), by the rule of report section 9"},
    "scores": {"accuracy": 0.8684, "mean_recall": 0.7932, "ece": 0.0125, "nll": 0.3835,
               "on": "PublicTest, FER+ majority labels, flip TTA, this float16 file in float32"},
}


def write_onnx_card(path, card):
    import onnx

    model = onnx.load(path)
    kept = [p for p in model.metadata_props if p.key != cards.ONNX_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    prop = model.metadata_props.add()
    prop.key, prop.value = cards.ONNX_KEY, json.dumps(card, sort_keys=True)
    from ferkit.files import atomic_output

    with atomic_output(path) as tmp:
        onnx.save(model, tmp)


def main():
    for name, card in (("fer2013_cnn", FER2013), ("ferplus_cnn", FERPLUS)):
        keras_file, onnx_file = (os.path.join(HERE, name + ext) for ext in (".keras", ".onnx"))
        cards.write_keras_card(keras_file, card)
        write_onnx_card(onnx_file, card)
        print(f"{keras_file}, {onnx_file}: card written")


if __name__ == "__main__":
    main()
