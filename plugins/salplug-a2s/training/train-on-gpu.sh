#!/usr/bin/env bash
# Both A2S stages, on EfficientNet-Lite0, on the DUTS-TR lists beside this script (photos only; 200 held-out masks for the
# reported validation curve), on one CUDA GPU, inside a time box. Run from the repository root.
#   BUDGET_S    seconds both stages may take (default 3600): stage 1 gets a quarter, stage 2 the rest;
#               a stage that would take longer stops cleanly (`max_minutes`); run again with --resume to go on
#   A2S_OUT     folder for the two checkpoints (default runs/a2s/duts)
#   A2S_LABELS  folder for stage 2's pseudo labels (default $A2S_OUT/labels)
#   DEVICE      cuda (default) or cpu;  EXTRA  more --set options for both stages (dry runs)
set -euo pipefail
export PYTHONUNBUFFERED=1
started=$(date +%s)
budget=${BUDGET_S:-3600}
here=plugins/salplug-a2s/training
data=${SALPLUG_DATA:?set SALPLUG_DATA to the folder that holds duts-tr/}/duts-tr
out=${A2S_OUT:-runs/a2s/duts}
mkdir -p "$out"
minutes() { awk "BEGIN { print $1 / 60 }"; }
common=(--set "images=[$data/images]" --set "image_list=$here/duts-tr-train3000.txt"
        --set "validation=$data" --set "validation_list=$here/duts-tr-val200.txt" --set "device=${DEVICE:-cuda}")
read -r -a extra <<< "${EXTRA:-}"
python3 -m salplug train a2s-stage1 "${common[@]}" --set cache_dir=null --set "max_minutes=$(minutes $(( budget / 4 )))" \
    --set backbone=tf_efficientnet_lite0 --set "out=$out/a2s-stage1-efficientnet-lite0.pt" "${extra[@]}"
left=$(( budget - ($(date +%s) - started) ))
python3 -m salplug train a2s "${common[@]}" --set "stage1_checkpoint=$out/a2s-stage1-efficientnet-lite0.pt" \
    --set "labels_dir=${A2S_LABELS:-$out/labels}" --set "crf_workers=$(nproc)" --set "max_minutes=$(minutes $left)" \
    --set backbone=tf_efficientnet_lite0 --set "out=$out/a2s-efficientnet-lite0.pt" "${extra[@]}"
echo "a2s: both stages done in $(( $(date +%s) - started ))s"
