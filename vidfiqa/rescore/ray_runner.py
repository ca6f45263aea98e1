"""Re-scoring on a Ray cluster: a pool of actors, each loading the models once.

``address``: ``"local"`` starts a Ray instance in this machine (``num_cpus`` of its CPUs), ``"auto"``
joins the cluster this machine belongs to (``ray start`` / RAY_ADDRESS) or, when there is none,
starts a local one; anything else is a cluster address (``ray://head:10001``).  When the cluster has GPUs each actor takes one and runs the models
with CUDA; otherwise each takes one CPU.  Every actor writes its videos' shards itself (the
shard folder must be on storage the workers share - a local instance always does), so a lost
actor costs only the video it was working on, and the driver only collects keys.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ..ray_connect import connect_ray
from .items import VideoItem
from .worker import RescoreSettings


def run_on_ray(items: list[VideoItem], settings: RescoreSettings, shards: Path, address: str = "local",
               num_cpus: int | None = None) -> Iterator[str]:
    """Score ``items`` on Ray; yields each video's key as its shard is written."""
    ray = connect_ray(address, num_cpus)
    from ray.util import ActorPool

    from .shards import write_shard
    from .worker import RescoreWorker

    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    if gpus:
        settings = replace(settings, device="cuda")

    class RescoreActor:
        def __init__(self, settings: RescoreSettings):
            import os

            # One actor per CPU: its models must not each spread over every core.
            os.environ.setdefault("VIDFIQA_THREADS", "1")
            import torch

            torch.set_num_threads(1)
            self.worker = RescoreWorker(settings)

        def score(self, item: VideoItem, path: str) -> str:
            write_shard(self.worker.process(item), Path(path))
            return item.key

    # ray.remote applied as a call, not as a decorator, so type checkers see the actor class it returns.
    remote_actor = ray.remote(num_cpus=0 if gpus else 1, num_gpus=1 if gpus else 0)(RescoreActor)
    count = max(1, min(len(items), gpus or cpus))
    actors = [remote_actor.remote(settings) for _ in range(count)]
    try:
        pool = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, item: actor.score.remote(item, str(shards / item.shard_name)), items)
    finally:
        for actor in actors:
            ray.kill(actor)
