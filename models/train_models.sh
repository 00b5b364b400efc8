#!/usr/bin/env bash
# Trains the bundled demo models from the bundled demo micrographs (resources/demo/), on CPU.
# Each model's log is written beside it (models/<material>.log). Usage:
#   bash models/train_models.sh [material ...]     (default: fibres separator electrode)
# Tiny preset, 32 px crops, batch 16, lr 1e-3: chosen to train in minutes on a 2-core CPU
# (lr 1e-3 reached the loss of lr 1e-4 in about a third of the steps; docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${MICRO3D_MODEL_STEPS:-4000}"
for material in "${@:-fibres separator electrode}"; do
  for m in $material; do
    d="resources/demo/$m"
    python3 -m micro3d_gui.cli train --xy "$d/xy" --xz "$d/xz" --yz "$d/yz" \
        --out "models/$m.pt" --preset tiny --steps "$STEPS" --crop 32 --batch 16 --lr 1e-3 \
        --seed 0 --device cpu --checkpoint-every 500 2>&1 | tee "models/$m.log"
  done
done
