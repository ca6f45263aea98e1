"""Per-video shards of a re-scoring run: writing one atomically, merging them into the output.

Both the in-process runner (:mod:`.run`) and the Ray actors (:mod:`.ray_runner`) write shards,
so the code lives here, imported by both, rather than in one of them.
"""

from __future__ import annotations

import io
from pathlib import Path

from ..atomic import atomic_write_bytes
from .items import VideoItem
from .worker import COLUMNS


def shard_dir(out: Path) -> Path:
    """The folder beside ``out`` that holds its shards."""
    return out.with_name(out.name + ".shards")


def write_shard(rows: dict[str, list], path: Path) -> int:
    """Rows -> parquet, atomically; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("video", pa.string()), ("frame_index", pa.int32()), ("frame", pa.int64()), ("path", pa.string()), ("pts", pa.float64()),
        ("detected", pa.bool_()), ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
        ("detector_score", pa.float32()), ("quality", pa.float64()), ("embedding", pa.list_(pa.float32())),
    ])
    table = pa.table({c: rows[c] for c in COLUMNS}, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    atomic_write_bytes(path, buffer.getvalue(), durable=False)
    return table.num_rows


def merge(items: list[VideoItem], shards: Path, out: Path) -> int:
    """The shards of ``items``, in item order, into one parquet file ``out``; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(shards / item.shard_name) for item in items])
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    atomic_write_bytes(out, buffer.getvalue())
    return table.num_rows
