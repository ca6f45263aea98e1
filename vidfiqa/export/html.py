"""``index.html``: one static page (no server, no network, no external files but our images):
one section per person, best person first, with the person's best frames; the person's tracks
fold out beneath, each with its own picks and a quality-over-time plot (inline SVG, one quality
scale for every plot); tracks rejected as not face-like are folded away at the end."""

from __future__ import annotations

import html as _html
import math

import numpy as np

from ..components import NAMES, UNITS, reasons
from ..select import QualitySeries

PLOT_POINTS = 300  # a long track's series is thinned to this many points for the plot
PLOT_W, PLOT_H = 380, 130

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em} .meta{color:#555;font-size:.9em;margin-bottom:1em}
table{border-collapse:collapse} td{border-top:1px solid #ddd;padding:.6em;vertical-align:top}
.tid{font-weight:bold;white-space:nowrap} .small{color:#666;font-size:.8em}
figure{display:inline-block;margin:0 .6em 0 0;text-align:center;font-size:.8em}
figure img{display:block;height:112px;border-radius:3px;background:#ddd}
figure img.main{height:168px}
img.broken{outline:3px solid #c00}
svg .raw{fill:none;stroke:#9bb;stroke-width:1} svg .smooth{fill:none;stroke:#036;stroke-width:1.6}
svg .sel{fill:#c40} svg text{font-size:10px;fill:#666} svg .axis{stroke:#bbb;stroke-width:1}
#status.bad{color:#c00;font-weight:bold}
section.person{border-top:2px solid #ccc;padding:.6em 0} h2{font-size:1.1em;margin:.2em 0 .4em}
details{margin:.4em 0} summary{cursor:pointer;color:#036} .explain{color:#555;font-size:.85em;margin:.2em 0 1em}
.reason{color:#a40} .comp{color:#555;font-size:.75em;max-width:180px;margin:auto}
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
    return {"t": t[keep], "q": series.quality[keep], "s": series.quality_smoothed[keep], "picks": picks, "timed": timed}


def quality_scale(plots: dict[int, dict]) -> tuple[float, float]:
    """One quality range for every plot of the page, so that a flat line near 0 (a false face)
    never looks like a good track: the range of all plotted values, widened to include 0..0.5."""
    values = [v for plot in plots.values() for key in ("q", "s") for v in plot[key] if math.isfinite(v)]
    lo, hi = min(values + [0.0]), max(values + [0.5])
    return lo, hi + 0.05 * (hi - lo)


def _svg(plot: dict, scale: tuple[float, float]) -> str:
    t, q, s = plot["t"], plot["q"], plot["s"]
    finite = np.concatenate([q[np.isfinite(q)], s[np.isfinite(s)]])
    if len(t) == 0 or len(finite) == 0:
        return f'<svg width="{PLOT_W}" height="{PLOT_H}"><text x="4" y="14">no scored frames</text></svg>'
    t0, t1 = float(t.min()), float(t.max())
    lo, hi = scale
    left, right, top, bottom = 34, 8, 16, 26

    def x(v):
        return left + (PLOT_W - left - right) * ((v - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v):
        return PLOT_H - bottom - (PLOT_H - top - bottom) * (v - lo) / (hi - lo)

    def line(values, cls):
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, values) if math.isfinite(b))
        return f'<polyline class="{cls}" points="{pts}"/>'

    dots = "".join(f'<circle class="sel" cx="{x(a):.1f}" cy="{y(b):.1f}" r="3.5"/>' for a, b in plot["picks"] if math.isfinite(b))
    unit = "s" if plot.get("timed", True) else "frame"
    axes = (f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{PLOT_H - bottom}"/>'
            f'<line class="axis" x1="{left}" y1="{PLOT_H - bottom}" x2="{PLOT_W - right}" y2="{PLOT_H - bottom}"/>'
            f'<text x="2" y="{y(hi) + 8:.0f}">{hi:.2f}</text><text x="2" y="{y(lo):.0f}">{lo:.2f}</text>'
            f'<text x="2" y="{(top + PLOT_H - bottom) / 2:.0f}">quality</text>'
            f'<text x="{left}" y="{PLOT_H - 12}">{t0:.1f}</text>'
            f'<text x="{PLOT_W - right - 30}" y="{PLOT_H - 12}">{t1:.1f}</text>'
            f'<text x="{PLOT_W / 2 - 20:.0f}" y="{PLOT_H - 2}">time ({unit})</text>')
    legend = (f'<line class="raw" x1="{left + 4}" y1="8" x2="{left + 18}" y2="8" style="stroke:#9bb"/><text x="{left + 21}" y="11">raw</text>'
              f'<line x1="{left + 48}" y1="8" x2="{left + 62}" y2="8" style="stroke:#036;stroke-width:1.6"/><text x="{left + 65}" y="11">smoothed</text>'
              f'<circle class="sel" cx="{left + 122}" cy="8" r="3"/><text x="{left + 128}" y="11">picked</text>')
    return (f'<svg width="{PLOT_W}" height="{PLOT_H}" role="img" aria-label="quality over time">'
            f'{axes}{legend}{line(q, "raw")}{line(s, "smooth")}{dots}</svg>')


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _seconds(value) -> str:
    return "?" if value is None else f"{value:.1f} s"


def _components(item: dict) -> str:
    """A pick's components beneath it: pose and size, the reasons it is poor if any; every
    component with its unit on hover."""
    comp = item.get("components")
    if not comp:
        return ""
    esc = _html.escape

    def show(name: str) -> str:
        value = comp.get(name)
        return "?" if value is None else f"{value:.0f}" if name in ("yaw", "pitch", "roll", "inter_eye_px") else f"{value:.2f}"

    hover = "; ".join(f"{name} {show(name)} {UNITS[name]}" for name in NAMES)
    row = np.array([np.nan if comp.get(n) is None else comp[n] for n in NAMES], np.float64)
    words = reasons(row)
    summary = f'yaw {show("yaw")}&deg; pitch {show("pitch")}&deg; &middot; {show("inter_eye_px")} px'
    why = f'<br><span class="reason">{esc(", ".join(words))}</span>' if words else ""
    return f'<div class="comp" title="{esc(hover)}">{summary}{why}</div>'


def _figure(item: dict, track: bool) -> str:
    esc = _html.escape
    where = f't {item["pts"]:.1f} s' if item.get("pts") is not None else f'frame {item["frame_index"]}'
    extra = f' &middot; track {item["track_id"]}' if "track_id" in item and not track else ""
    context = f'<img src="{esc(item["context"])}" alt="context of frame {item["frame_index"]}">' if track else ""
    source = item.get("source")
    if item.get("face"):  # cut from the main stream: the face at its own resolution, larger
        face = f'<img class="main" src="{esc(item["face"])}" alt="frame {item["frame_index"]}, main stream">'
        origin = f'<br><span class="small">main {source["size"][0]}x{source["size"][1]}</span>' if source else ""
    else:
        face = f'<img src="{esc(item["crop"])}" alt="frame {item["frame_index"]}">'
        origin = (f'<br><span class="small" title="{esc(source["reason"])}">analysed frame</span>'
                  if source and source.get("reason") else "")
    return (f'<figure><a href="{esc(item["context"])}">{face}</a>'
            f'{context}{where}{extra}<br>q {item["quality_smoothed"]:.3f}{origin}{_components(item)}</figure>')


def _track_rows(tracks: list[dict], plots: dict[int, dict], scale: tuple[float, float]) -> str:
    esc = _html.escape
    rows = []
    for track in tracks:
        figures = "".join(_figure(item, track=True) for item in track["selected"])
        plot = _svg(plots[track["track_id"]], scale) if track["track_id"] in plots else ""
        said = [track[key] for key in ("reason", "unusable") if track.get(key)]
        if track.get("best_face") and track.get("reason"):  # rejected: what its best face looked like
            said.append("best face: " + ", ".join(track["best_face"]))
        reason = "".join(f'<br><span class="reason">{esc(line)}</span>' for line in said)
        rows.append(
            f'<tr class="track" data-track-id="{track["track_id"]}"><td class="tid">track {track["track_id"]}'
            f'<div class="small">{_seconds(track["first_pts"])} - {_seconds(track["last_pts"])}<br>'
            f'{_count(track["num_detections"], "detection")}<br>ended: {esc(str(track.get("ended", "")))}{reason}</div></td>'
            f'<td>{figures or "no frame passed the gates"}</td><td>{plot}</td></tr>'
        )
    return f'<table>{"".join(rows)}</table>'


def render(manifest: dict, plots: dict[int, dict]) -> str:
    esc = _html.escape
    src = manifest["source"]
    scale = quality_scale(plots) if plots else (0.0, 1.0)
    tracks = {t["track_id"]: t for t in manifest["tracks"]}
    sections = []
    for person in manifest.get("persons", []):
        own = [tracks[tid] for tid in person["track_ids"] if tid in tracks]
        figures = "".join(_figure(item, track=False) for item in person["selected"])
        sections.append(
            f'<section class="person" data-person-id="{person["person_id"]}"><h2>person {person["person_id"]}</h2>'
            f'<div class="small">{_count(len(own), "track")} &middot; {_seconds(person["first_pts"])} - {_seconds(person["last_pts"])}'
            f' &middot; {_count(person["num_detections"], "detection")}</div>{figures}'
            f'<details class="tracks"><summary>its {_count(len(own), "track")}</summary>{_track_rows(own, plots, scale)}</details></section>'
        )
    loose = [t for t in manifest["tracks"] if t.get("person_id") is None]
    if loose:
        sections.append(f'<details class="loose"><summary>{_count(len(loose), "track")} without a usable frame</summary>'
                        f'{_track_rows(loose, plots, scale)}</details>')
    rejected = manifest.get("rejected", [])
    if rejected:
        sections.append(f'<details class="rejected"><summary>{_count(len(rejected), "rejected track")} (not face-like)</summary>'
                        f'{_track_rows(rejected, plots, scale)}</details>')
    stats = manifest.get("stats") or {}
    status = esc(manifest["status"]) + (f": {esc(manifest['message'])}" if manifest.get("message") else "")
    fps = f'{src["fps"]:.3g} fps' if src.get("fps") else "? fps"
    persons = manifest.get("persons", [])
    main = src.get("main")
    main_text = (f' &middot; faces cut from the main stream {esc(str(main.get("path")))} ({main.get("width")}x{main.get("height")}: '
                 f'{stats["main_stream"]["from_main"]} of {stats["main_stream"]["picks"]} picks)'
                 if main and "main_stream" in stats else "")
    meta = (f'{esc(str(src.get("path")))} &middot; {src.get("width")}x{src.get("height")}{main_text} &middot; {fps} &middot; '
            f'{_count(len(persons), "person")} &middot; {_count(len(manifest["tracks"]), "track")} &middot; status {status}'
            + (f' &middot; {stats["frames_processed"]} frames in {stats["elapsed_s"]:.1f} s' if "elapsed_s" in stats else ""))
    explain = ('q: the smoothed face image quality of the frame (the bundled eDifFIQA student; higher is better for face '
               'recognition: below 0.1 barely usable, 0.4 and above good). Click a face for a wider view.')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vidfiqa gallery</title>"
        f"<style>{STYLE}</style><script>{SCRIPT}</script></head>\n"
        f'<body data-persons="{len(persons)}" data-tracks="{len(manifest["tracks"])}" data-rejected="{len(rejected)}">'
        f'<h1>vidfiqa: best frames per person</h1>'
        f'<div class="meta">{meta} &middot; <span id="status"></span></div><p class="explain">{explain}</p>\n'
        f'{"".join(sections)}\n</body></html>\n'
    )
