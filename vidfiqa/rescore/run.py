"""`vidfiqa rescore`: per-frame quality (and embeddings) for every video under a root, resumable.

Each video's rows are written to its own shard, ``<OUT>.shards/<hash of the video key>.parquet``,
atomically, the moment the video is finished; the settings of the run are kept next to them
(``_settings.json``).  Running the same command again skips every video whose shard exists, so an
interrupted run (Ctrl-C, a crash, a lost Ray worker) continues where it stopped and never
re-scores a finished video.  When all videos are done the shards are merged, in item order,
into OUT.  The same code runs in-process or as Ray actors (one model load per actor).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from ..atomic import atomic_write_text
from ..errors import ConfigError
from .items import find_items
from .shards import merge, shard_dir, write_shard
from .worker import RescoreSettings, RescoreWorker

Progress = Callable[[int, int, str], None]  # (videos done, videos total, last key)


def _check_settings(shards: Path, settings: RescoreSettings, root: Path) -> None:
    """Shards from a run with other settings must not be mixed into this one."""
    record = {"root": str(root.resolve()), **settings.to_dict()}
    record.pop("device", None)  # the same scores whichever device computed them
    path = shards / "_settings.json"
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != record:
            changed = sorted(k for k in set(previous) | set(record) if previous.get(k) != record.get(k))
            raise ConfigError(f"{shards} holds shards made with other settings ({', '.join(changed)} differ); "
                              f"use another -o, or delete that folder to start over")
    else:
        shards.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")


def rescore(root: str | Path, out: str | Path, settings: RescoreSettings, ray: str | None = None, ray_cpus: int | None = None,
            progress: Progress | None = None, log: Callable[[str], None] = print) -> dict:
    """Score every video under ``root`` into ``out`` (parquet); returns a summary dict."""
    root, out = Path(root), Path(out)
    items, found = find_items(root)
    log(f"{len(items)} videos: {found}")
    shards = shard_dir(out)
    _check_settings(shards, settings, root)
    pending = [item for item in items if not (shards / item.shard_name).is_file()]
    if len(pending) < len(items):
        log(f"resuming: {len(items) - len(pending)} videos already scored, {len(pending)} to go")
    started = time.monotonic()
    done = len(items) - len(pending)
    if pending:
        if ray is None:
            worker = RescoreWorker(settings)
            for item in pending:
                write_shard(worker.process(item), shards / item.shard_name)
                done += 1
                if progress:
                    progress(done, len(items), item.key)
        else:
            from .ray_runner import run_on_ray

            for key in run_on_ray(pending, settings, shards, address=ray, num_cpus=ray_cpus):
                done += 1
                if progress:
                    progress(done, len(items), key)
    rows = merge(items, shards, out)
    return {"videos": len(items), "scored_now": len(pending), "rows": rows, "seconds": round(time.monotonic() - started, 2), "found": found}
