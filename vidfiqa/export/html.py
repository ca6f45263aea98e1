"""``index.html``: one static page (no server, no network, no external files but our images)
with one row per track - its selected frames and a quality-over-time plot drawn as inline SVG."""

from __future__ import annotations

import html as _html
import math

import numpy as np

from ..select import QualitySeries

PLOT_POINTS = 300  # a long track's series is thinned to this many points for the plot
PLOT_W, PLOT_H = 360, 110

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em} .meta{color:#555;font-size:.9em;margin-bottom:1em}
table{border-collapse:collapse} td{border-top:1px solid #ddd;padding:.6em;vertical-align:top}
.tid{font-weight:bold;white-space:nowrap} .small{color:#666;font-size:.8em}
figure{display:inline-block;margin:0 .6em 0 0;text-align:center;font-size:.8em}
figure img{display:block;height:112px;border-radius:3px;background:#ddd}
img.broken{outline:3px solid #c00}
svg .raw{fill:none;stroke:#9bb;stroke-width:1} svg .smooth{fill:none;stroke:#036;stroke-width:1.6}
svg .sel{fill:#c40} svg text{font-size:10px;fill:#666}
#status.bad{color:#c00;font-weight:bold}
"""

# Marks broken images for the reader (and lets a headless browser check the page): after the
# page has loaded, every <img> that failed gets a red outline and is counted in #status.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) { broken++; imgs[i].className += ' broken'; }
  }
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-images-broken', broken);
  var s = document.getElementById('status');
  s.textContent = broken ? broken + ' of ' + imgs.length + ' images are missing' : imgs.length + ' images';
  if (broken) s.className = 'bad';
});
"""


def plot_data(series: QualitySeries, selected: list[dict]) -> dict:
    """What the plot needs from a track: thinned (time, quality, smoothed) and the picks."""
    timed = bool(np.isfinite(series.pts).all())
    t = series.pts if timed else series.frame_index.astype(np.float64)  # no timestamps: plot against frames
    keep = np.unique(np.linspace(0, len(t) - 1, min(len(t), PLOT_POINTS)).round().astype(int)) if len(t) else np.zeros(0, int)
    picks = [(float(item["pts"]) if timed else float(item["frame_index"]), float(item["quality_smoothed"])) for item in selected]
    return {"t": t[keep], "q": series.quality[keep], "s": series.quality_smoothed[keep], "picks": picks}


def _svg(plot: dict) -> str:
    t, q, s = plot["t"], plot["q"], plot["s"]
    finite = np.concatenate([q[np.isfinite(q)], s[np.isfinite(s)]])
    if len(t) == 0 or len(finite) == 0:
        return f'<svg width="{PLOT_W}" height="{PLOT_H}"><text x="4" y="14">no scored frames</text></svg>'
    t0, t1 = float(t.min()), float(t.max())
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.05, hi + 0.05
    pad = 14

    def x(v):
        return pad + (PLOT_W - 2 * pad) * ((v - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v):
        return PLOT_H - pad - (PLOT_H - 2 * pad) * (v - lo) / (hi - lo)

    def line(values, cls):
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, values) if math.isfinite(b))
        return f'<polyline class="{cls}" points="{pts}"/>'

    dots = "".join(f'<circle class="sel" cx="{x(a):.1f}" cy="{y(b):.1f}" r="3.5"/>' for a, b in plot["picks"] if math.isfinite(b))
    return (f'<svg width="{PLOT_W}" height="{PLOT_H}" role="img" aria-label="quality over time">'
            f'{line(q, "raw")}{line(s, "smooth")}{dots}'
            f'<text x="2" y="10">{hi:.2f}</text><text x="2" y="{PLOT_H - 2}">{lo:.2f}</text>'
            f'<text x="{PLOT_W - 80}" y="{PLOT_H - 2}">{t0:.1f}-{t1:.1f} s</text></svg>')


def render(manifest: dict, plots: dict[int, dict]) -> str:
    esc = _html.escape
    src = manifest["source"]
    rows = []
    for track in manifest["tracks"]:
        figures = "".join(
            f'<figure><a href="{esc(item["context"])}"><img src="{esc(item["crop"])}" alt="frame {item["frame_index"]}"></a>'
            f'<img src="{esc(item["context"])}" alt="context of frame {item["frame_index"]}">'
            f'frame {item["frame_index"]}<br>q {item["quality_smoothed"]:.3f}</figure>'
            for item in track["selected"]
        )
        plot = _svg(plots[track["track_id"]]) if track["track_id"] in plots else ""
        rows.append(
            f'<tr class="track" data-track-id="{track["track_id"]}"><td class="tid">track {track["track_id"]}'
            f'<div class="small">frames {track["first_frame"]}-{track["last_frame"]}<br>{track["num_detections"]} detections'
            f'<br>ended: {esc(str(track.get("ended", "")))}</div></td><td>{figures or "no frame passed the gates"}</td><td>{plot}</td></tr>'
        )
    stats = manifest.get("stats") or {}
    status = esc(manifest["status"]) + (f": {esc(manifest['message'])}" if manifest.get("message") else "")
    meta = (f'{esc(str(src.get("path")))} &middot; {src.get("width")}x{src.get("height")} &middot; '
            f'{src.get("fps") or "?"} fps &middot; {len(manifest["tracks"])} tracks &middot; status {status}'
            + (f' &middot; {stats["frames_processed"]} frames in {stats["elapsed_s"]:.1f} s' if "elapsed_s" in stats else ""))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vidfiqa gallery</title>"
        f"<style>{STYLE}</style><script>{SCRIPT}</script></head>\n"
        f'<body data-tracks="{len(manifest["tracks"])}"><h1>vidfiqa: best frames per person</h1>'
        f'<div class="meta">{meta} &middot; <span id="status"></span></div>\n'
        f'<table>{"".join(rows)}</table>\n</body></html>\n'
    )
