#!/usr/bin/env bash
# Trains the bundled demo models from the bundled demo micrographs (resources/demo/), on CPU,
# with nothing but the default recipe of `micro3d train` (as a user would: 10 minutes, preset
# auto = tiny on a CPU; core/training.py). Each model's log is written beside it
# (models/<material>.log). Usage:
#   bash models/train_models.sh [material ...]     (default: fibres separator electrode)
# MICRO3D_MODEL_TIME overrides the training time (e.g. 2m); PYTHON the interpreter.
# The models keep a subset of these micrographs for the self-check of sampled volumes;
# models/add_reference.py added it to the ones trained before the self-check existed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TIME="${MICRO3D_MODEL_TIME:-10m}"
for m in ${@:-fibres separator electrode}; do
  d="resources/demo/$m"
  "$PY" -m micro3d_gui.cli train --xy "$d/xy" --xz "$d/xz" --yz "$d/yz" \
      --out "models/$m.pt" --time "$TIME" --seed 0 --device cpu 2>&1 | tee "models/$m.log"
done
