"""Held-out reconstruction PSNR of the shipped small DifFIQA diffusion model.

    python benchmarks/diffiqa_psnr.py [--model vidfiqa/models/diffiqa_small.pt]   (about a minute)

Recomputes, from the file that ships, the check `vidfiqa train ddpm` ran at the end of training
(and stored in the checkpoint's ``metrics``): the glint24_aligned crops loaded as training loaded
them (the checkpoint's data fingerprint must match), its first 16 held-out crops (never trained
on), noise at t = 5 and t = 50 (seed 0), a deterministic DDIM reconstruction (eta 0), mean PSNR of
the reconstruction and of the noisy input against the clean crop.  The shipped weights are
float16, so the figures can differ from the training-time ones (float32) in the last digits.
Results: benchmarks/results/diffiqa_small_psnr.json, beside the metrics stored in the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "vidfiqa" / "models" / "diffiqa_small.pt")
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "diffiqa_small_psnr.json")
    args = parser.parse_args()
    from benchinfo import Run

    run = Run("diffiqa_psnr.py", sys.argv[1:], timed=False)
    import numpy as np
    import torch

    from vidfiqa.backbones.registry import sha256_file
    from vidfiqa.diffusion import load_diffusion, reconstruction_psnr
    from vidfiqa.diffusion.train import fingerprint
    from vidfiqa.photos import PhotoPipeline

    stored = torch.load(args.model, map_location="cpu", weights_only=False)
    crops = np.concatenate([r.faces.crops for r in PhotoPipeline(None, largest_only=True, aligned_input=True).run([SHARED / "data" / "glint24_aligned"])
                            if r.faces is not None and len(r.faces)])
    if fingerprint(crops) != stored["data"]["fingerprint"]:
        sys.exit(f"glint24_aligned crops differ from the training data (fingerprint {fingerprint(crops)} vs {stored['data']['fingerprint']})")
    held = crops[np.asarray(stored["data"]["holdout"])[: args.crops]]
    diffusion = load_diffusion(args.model)
    measured = {}
    for t in (5, 50):
        measured[f"t{t}"] = m = reconstruction_psnr(diffusion, held, t, seed=0)
        print(f"t = {t}: reconstruction {m['psnr']:.2f} dB, noisy input {m['psnr_noisy_input']:.2f} dB ({m['n']} crops); "
              f"at training time {stored['metrics'][f't{t}']['psnr']:.2f} / {stored['metrics'][f't{t}']['psnr_noisy_input']:.2f} dB")
    model = args.model.resolve()
    run.write(args.out, {
        "model": {"file": model.relative_to(REPO).as_posix() if model.is_relative_to(REPO) else str(model),
                  "sha256": sha256_file(model), "step": stored["step"]},
        "data": {"crops": len(crops), "fingerprint": stored["data"]["fingerprint"], "held_out_used": len(held), "seed": 0},
        "measured_float16_weights": measured,
        "stored_at_training_time": stored["metrics"],
    })


if __name__ == "__main__":
    main()
