"""Build (or rebuild) the training/dev crop set from ../shared and cache it (never committed).

    python training/build_cropset.py [--copies 1] [--seed 0] [-o ~/.cache/vidfiqa/trainset/cropset_v1.npz]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidfiqa.train.cropset import build  # noqa: E402

CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared")))
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=CACHE / "trainset" / "cropset_v1.npz")
    args = parser.parse_args()
    start = time.time()
    cropset = build(args.shared, copies=args.copies, seed=args.seed, log=lambda m: print(f"[{time.time() - start:6.0f}s] {m}", flush=True))
    cropset.save(args.output)
    print(f"saved {len(cropset)} crops to {args.output}")


if __name__ == "__main__":
    main()
