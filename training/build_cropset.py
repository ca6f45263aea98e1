"""Build (or rebuild) the training/dev crop set from ../shared and cache it (never committed).

    python training/build_cropset.py [--copies 1] [--seed 0] [-o ~/.cache/vidfiqa/trainset/cropset_v1.npz]
    python training/build_cropset.py --check          # are the pinned inputs there, unchanged?
    python training/build_cropset.py --write-inputs   # pin what ../shared holds now (a new crop set)

The build reads exactly the files listed in training/cropset_v1_inputs.sha256 (``--inputs``) and
stops, before any detection, when one of them is missing or has changed; files added to
../shared later are ignored and listed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidfiqa.train.cropset import INPUTS_V1, InputsChanged, build, check_inputs, write_inputs  # noqa: E402

CACHE = Path(os.environ.get("VIDFIQA_CACHE", Path.home() / ".cache" / "vidfiqa"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared")))
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--camera-copies", type=int, default=0,
                        help="more degraded copies per crop from the kinds cameras add (h264, sensor noise, defocus, over-exposure); "
                             "crop set v2 is --camera-copies 1")
    parser.add_argument("--inputs", type=Path, default=INPUTS_V1, help="manifest of the pinned input files")
    parser.add_argument("--unpinned", action="store_true", help="read whatever ../shared holds now, ignoring the manifest")
    parser.add_argument("--check", action="store_true", help="only compare ../shared with the manifest")
    parser.add_argument("--write-inputs", action="store_true", help="write the manifest from what ../shared holds now, then stop")
    parser.add_argument("-o", "--output", type=Path, default=CACHE / "trainset" / "cropset_v1.npz")
    args = parser.parse_args()
    if args.write_inputs:
        files = write_inputs(args.shared, args.inputs)
        print(f"pinned {len(files)} files in {args.inputs}")
        return
    if args.check:
        check = check_inputs(args.shared, args.inputs)
        print(f"{len(check.pinned)} pinned files; {len(check.ignored)} unpinned files ignored" + (f" (e.g. {', '.join(check.ignored[:3])})" if check.ignored else ""))
        print("inputs OK" if check.ok else f"inputs differ: {check.problems()}")
        sys.exit(0 if check.ok else 1)
    start = time.time()
    try:
        cropset = build(args.shared, copies=args.copies, seed=args.seed, inputs=None if args.unpinned else args.inputs, camera_copies=args.camera_copies,
                        log=lambda m: print(f"[{time.time() - start:6.0f}s] {m}", flush=True))
    except InputsChanged as error:
        sys.exit(f"build_cropset: {error}")
    cropset.save(args.output)
    print(f"saved {len(cropset)} crops to {args.output}")


if __name__ == "__main__":
    main()
