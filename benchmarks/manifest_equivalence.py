"""Do two versions of vidfiqa give the same galleries?  For refactors that promise no change.

    python benchmarks/manifest_equivalence.py [--baseline 9c041fc] [--against COMMIT] [--inputs samples/astronaut.mp4 ...] [--configs default fast]

Checks out ``--baseline`` (a commit) into a temporary git worktree, runs `vidfiqa run` of that
version and of this working tree (or of ``--against``, another commit) on every input with every preset, and compares the manifests
field by field - apart from what must differ (creation time, version, elapsed times, speeds,
stage times, settings that the newer version added) - and every crop, context image and series
file byte for byte.  Writes benchmarks/results/manifest_equivalence.json; exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("VIDFIQA_SHARED", REPO.parent / "shared"))
DEFAULT_INPUTS = [REPO / "samples" / "astronaut.mp4", SHARED / "data" / "videos" / "liveportrait_s18.mp4",
                  SHARED / "data" / "edited_videos" / "azurevi_friends_cuts.mp4"]
VOLATILE_STATS = ("elapsed_s", "frames_per_s", "input_frames_per_s", "stage_seconds")


def comparable(manifest: dict[str, Any], settings_known: set[str]) -> dict[str, Any]:
    m = dict(manifest)
    for key in ("created", "vidfiqa_version"):
        m.pop(key, None)
    m["stats"] = {k: v for k, v in m.get("stats", {}).items() if k not in VOLATILE_STATS}
    m["settings"] = {k: v for k, v in m.get("settings", {}).items() if k in settings_known}
    return m


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if type(a) is not type(b):
        return [f"{path}: {a!r} vs {b!r}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def run(python_path: Path, source: Path, out: Path, config: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    subprocess.run([sys.executable, "-m", "vidfiqa", "run", str(source), "-o", str(out), "--config", config],
                   cwd=python_path, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return json.loads((out / "manifest.json").read_text())


def file_differences(a: Path, b: Path) -> list[str]:
    out = []
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    for name in sorted(names):
        if name.name in ("manifest.json", "index.html", "track.json"):
            continue  # compared as data above (they hold times and versions)
        pa, pb = a / name, b / name
        if not (pa.is_file() and pb.is_file()):
            out.append(f"{name}: only in one")
        elif pa.read_bytes() != pb.read_bytes():
            out.append(f"{name}: contents differ")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9c041fc", help="commit to compare with (default: before the reshape)")
    parser.add_argument("--inputs", type=Path, nargs="+", default=DEFAULT_INPUTS)
    parser.add_argument("--against", default=None, help="commit to compare (default: this working tree)")
    parser.add_argument("--configs", nargs="+", default=["default", "fast"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "manifest_equivalence.json")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", args.against or "HEAD"], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    report: dict[str, Any] = {"baseline": commit, "against": head if args.against else f"working tree at {head}", "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), commit], cwd=REPO, check=True, capture_output=True)
        new = REPO
        if args.against:
            new = work / "against"
            subprocess.run(["git", "worktree", "add", "--detach", str(new), head], cwd=REPO, check=True, capture_output=True)
        try:
            for source in args.inputs:
                for config in args.configs:
                    name = f"{source.stem}-{config}"
                    before = run(old, source.resolve(), work / f"{name}-before", config)
                    after = run(new, source.resolve(), work / f"{name}-after", config)
                    known = set(before.get("settings", {}))
                    found = differences(comparable(before, known), comparable(after, known))
                    found += file_differences(work / f"{name}-before", work / f"{name}-after")
                    report["cases"].append({"input": source.name, "config": config, "tracks": len(after["tracks"]),
                                            "selected": sum(len(t["selected"]) for t in after["tracks"]), "differences": found[:50]})
                    print(f"{name}: {len(after['tracks'])} tracks, {len(found)} differences")
        finally:
            for tree in {old, new} - {REPO}:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False, capture_output=True)
    report["identical"] = all(not case["differences"] for case in report["cases"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
