"""What every benchmark records beside its figures: the machine, the software, and how busy the
machine was (``os.getloadavg()`` when the run started and when it ended).

    from benchinfo import Run            # benchmarks/ is the script's own folder, so on sys.path
    run = Run("bench_faces.py", sys.argv[1:])
    ...
    run.write(HERE / "results" / "faces_vm.json", {"detectors": rows})

The load average matters on the 2-core development machine, which other people's test runs
share: a load that is not near 0 means the benchmark did not have both cores to itself, and a
ratio of two timings lies (decode-only slows more than the pipeline under load: 0.52x measured
at a load of 1.7-3.8 was 0.32-0.35x on a quiet machine).  So a *timing* benchmark (``Run(...,
timed=True)``, the default) refuses to start when the 1-minute load is above ``QUIET_LOAD``
(0.5): it exits with status 3 and writes nothing.  ``--allow-load`` on its command line (removed
here, before the script parses its own options) runs it anyway, and the results file then says
so (``load_average.check``).  ``load_average.busy`` still marks a load above 1 at start or end.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import sys

BUSY_LOAD = 1.0  # 1-minute load average at start or end above which the machine was shared
QUIET_LOAD = 0.5  # a timing benchmark starts only below this 1-minute load (unless --allow-load)

# Taken off the command line here, at import, before the script's argparse sees it.
ALLOW_LOAD = "--allow-load" in sys.argv
if ALLOW_LOAD:
    sys.argv = [arg for arg in sys.argv if arg != "--allow-load"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU model, cores, OS and the versions of the libraries the figures depend on."""
    out = {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for module in ("numpy", "torch", "onnxruntime", "cv2", "av"):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        out[module if module != "cv2" else "opencv"] = getattr(mod, "__version__", "?")
    try:
        import torch

        out["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return out


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Run:
    """One benchmark run: machine, command, start time and load average at start; ``write`` adds
    the load average at the end and the wall time and writes the JSON results file."""

    def __init__(self, script: str, argv: list[str] | None = None, timed: bool = True):
        self.script = script
        self.argv = list(argv or []) + (["--allow-load"] if ALLOW_LOAD else [])
        self.started = datetime.now(timezone.utc)
        self.t0 = time.perf_counter()
        self.load_start = _load()
        self.timed = timed
        self.check = "not a timing benchmark" if not timed else f"1-minute load {self.load_start[0]} <= {QUIET_LOAD} at start"
        if timed and self.load_start[0] > QUIET_LOAD:
            if not ALLOW_LOAD:
                print(f"{script}: the 1-minute load is {self.load_start[0]} (above {QUIET_LOAD}): timings would not be this machine's; "
                      "stop what else runs and try again, or pass --allow-load (the results file then says so)", file=sys.stderr)
                raise SystemExit(3)
            self.check = f"overridden with --allow-load: 1-minute load {self.load_start[0]} > {QUIET_LOAD} at start; timings are upper bounds"

    def header(self) -> dict:
        load_end = _load()
        return {
            "script": f"benchmarks/{self.script}",
            "command": " ".join(["python", f"benchmarks/{self.script}", *self.argv]),
            "started_utc": self.started.isoformat(timespec="seconds"),
            "wall_s": round(time.perf_counter() - self.t0, 1),
            "machine": machine(),
            "load_average": {
                "start": self.load_start,
                "end": load_end,
                "busy": max(self.load_start[0], load_end[0]) > BUSY_LOAD,
                "check": self.check,
                "note": "os.getloadavg() (1, 5, 15 min); busy: 1-minute load above "
                        f"{BUSY_LOAD} at start or end, i.e. the cores were shared and timings are upper bounds",
            },
        }

    def write(self, path: Path, results: dict) -> dict:
        """``results`` under the run header, written atomically to ``path`` (JSON)."""
        data = {**self.header(), **results}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)
        print(f"-> {path} (load average {data['load_average']['start']} at start, {data['load_average']['end']} at end)")
        return data


def load_note(data: dict) -> str:
    """A short 'load a -> b' text for printed tables."""
    load = data["load_average"]
    return f"load average {load['start'][0]:.2f} -> {load['end'][0]:.2f}" + (" (shared machine)" if load["busy"] else "")
