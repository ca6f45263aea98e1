"""The YouTube Faces subset report: re-score every frame of ../shared/data/ytf_subset with the
fast quality methods (MobileFaceNet embeddings), then template verification and frame-level EDC
for each (`vidfiqa eval ytf --extra-pairs`).

    python benchmarks/ytf_subset_report.py      (needs ../shared; ~2 minutes on 2 CPU cores)

Writes benchmarks/results/ytf_subset/<method>.{json,md,png} and summary.md.  The subset has 8
videos of 7 people: 1 of the 5,000 protocol pairs is evaluable, and the extra pairs are 1
same-person cross-video pair and 27 different-person pairs - far too few to rank methods; the
report exists to show the whole path runs on real data and what it reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
OUT = HERE / "results" / "ytf_subset"
METHODS = {"ediffiqa": [], "froq": ["--option", f"calibration={REPO / 'training' / 'froq_mobilefacenet.json'}"], "sharpness": []}


def vidfiqa(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vidfiqa.cli", *args], check=True, env={**os.environ, "VIDFIQA_WEIGHTS": str(SHARED / "models")})


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # Per-frame scores and embeddings of the dataset stay out of the repository (test data only).
    scores = Path(tempfile.mkdtemp(prefix="vidfiqa-ytf-"))
    rows = ["| quality | k | template: quality-selected | random | first | frame EDC nAUC@0.3, FMR 1e-2 (random 1.00, floor) |", "|---|---|---|---|---|---|"]
    for method, options in METHODS.items():
        parquet = scores / f"{method}.parquet"
        vidfiqa("rescore", "ytf", str(SHARED / "data" / "ytf_subset"), "--method", method, *options, "--embed", "mobilefacenet", "-o", str(parquet))
        vidfiqa("eval", "ytf", str(parquet), "--protocol", str(SHARED / "data" / "ytf_protocol"), "--extra-pairs",
                "-o", str(OUT / f"{method}.json"), "--markdown", str(OUT / f"{method}.md"), "--plot", str(OUT / f"{method}.png"))
        report = json.loads((OUT / f"{method}.json").read_text())
        extra = {(r["rule"], r["k"]): r for r in report["extra"]["results"]}
        edc = next((c for c in report["frame_edc"].get("fmr", []) if abs(c["fmr"] - 1e-2) < 1e-12), None)
        for k in (1, 3, 5, None):
            acc = [extra[(rule, k)]["accuracy"] for rule in ("quality", "random", "first")]
            edc_text = (f"{edc['methods']['quality']['normalised']['0.3']:.3f} (floor {edc['floor']['0.3']['normalised']:.3f})"
                        if edc and k == 1 else "")
            rows.append(f"| {method} | {k or 'all'} | {acc[0]:.3f} | {acc[1]:.3f} | {acc[2]:.3f} | {edc_text} |")
    (OUT / "summary.md").write_text("Extra pairs (28: 1 same-person cross-video, 27 different-person; accuracy at the best threshold "
                                    "on these same pairs, optimistic)\n\n" + "\n".join(rows) + "\n")
    print((OUT / "summary.md").read_text())


if __name__ == "__main__":
    main()
