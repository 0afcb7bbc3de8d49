"""Annotate-page click benchmark: a 1024 x 1024 image with 400 objects in headless Chromium.

Run from the repository root::

    python bench/ui_click.py                       # 5 page loads, 50 clicks
    python bench/ui_click.py --clicks 50 --loads 5 --width 2000 --height 2000
    python bench/ui_click.py --app-dir /tmp/scratch  # the same against a patched copy of the app

What it does:

1. Draws a seeded project (no loop over objects): one 1024 x 1024 uint8 grey image and its
   uint16 instance mask with 400 objects (round and elongated ellipses on a jittered 20 x 20
   grid, never touching), written to ``<tmp>/projects/bench/{images,masks}/`` and registered
   with :class:`svetlana_core.store.Project` (``add_image`` + ``add_class`` for 2 classes, no
   label). The viewer's ``max_side`` is 1024, so the Annotate page shows it at step 1: one
   canvas pixel per image pixel.
2. Starts the app with ``tests/browser_server.app_server`` on that data root and opens
   ``/annotate?project=bench`` in headless Debian Chromium (Playwright, a fresh browser per
   load). **First paint** = from the ``page.goto`` call until (a) the "Annotate" heading is
   visible, (b) ``canvas.upper-canvas`` is visible and (c) the canvas's background canvas
   (``canvas.dc-background-canvas``, where the component draws the JPEG) has an opaque pixel
   at its centre, i.e. the image is drawn. Median of ``--loads`` loads; the first one is the
   first after the server start (cold caches: reading the files, encoding the preview).
3. On one page, clicks ``--clicks`` different unlabelled objects one by one with
   ``page.mouse.click`` at the object's centroid mapped through the canvas's bounding box, and
   for each measures **click-to-label** = from just before ``page.mouse.click`` until the
   text "objects [<label>]" is in the page (the Annotate page renders the caption
   "Last: <class> ← objects [<label>]" after it stored the label), polled on every animation
   frame with ``page.wait_for_function`` (timed with ``Locator.wait_for`` instead, the same
   clicks measured ~230 ms longer: its polling backs off); ``page.get_by_text(...).wait_for()``
   then confirms the text. A click whose caption does not show within 15 s is reported.
   Also measured per click, inside the page (``performance.now()``, no Playwright overhead):

   * ``dom``: mousedown → the caption's text is in the DOM (a MutationObserver);
   * ``send``: mousedown → the first ``rerun_script`` message the browser sends (the canvas
     debounces its updates by 200 ms; the sidebar's ``run_every=2`` fragment also sends one
     every 2 s, hence the odd small minimum);
   * ``server``: that send → the ``script_finished`` message of the run it started;
   * ``recoloured``: mousedown → the clicked object's pixel on the background canvas changed
     (the new preview with the object filled in its class colour is drawn: the canvas is
     ready for the next click);
   * the number of script runs, WebSocket messages and bytes received until the page is idle.

   After the text appears the label is looked up in the store (``Project.labels``); the
   benchmark waits for the page to be idle (no WebSocket frame for 250 ms) and for a single
   shown canvas before the next click (with a new canvas key per click, an earlier canvas
   sometimes stays in the page with zero height; counted and reported). Then, as the floor, ``--floor`` page reruns that store
   nothing: a click on the other class of the "Class" radio until the caption reads
   "Last: <class> ←" (no canvas debounce, no preview change).
4. Prints the figures (median, p90, min, max), the versions and the load average before and
   after, writes them as JSON to ``--json`` (default ``bench/out/ui_click.json``) and exits
   with status 1 when fewer labels than clicks were stored.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from svetlana_core.objects import object_table
from svetlana_core.store import Project

CLASSES = {"round": "#1f77b4", "elongated": "#ff7f0e"}
PROJECT = "bench"

# ---------------------------------------------------------------------------- data


def draw_scene(size: int = 1024, grid: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey image and its instance mask: ``grid**2`` ellipses on a jittered grid.

    Vectorised: every pixel belongs to one grid cell and each object stays inside its cell
    (radius + jitter < half a cell), so a pixel is tested only against its cell's ellipse.
    Labels ``1 .. grid**2`` in row-major cell order; half of the objects are elongated.
    """
    rng = np.random.default_rng(seed)
    n = grid * grid
    cell = size / grid
    k = np.arange(n)
    centre_r = (k // grid + 0.5) * cell + rng.uniform(-0.1, 0.1, n) * cell
    centre_c = (k % grid + 0.5) * cell + rng.uniform(-0.1, 0.1, n) * cell
    radius = rng.uniform(0.22, 0.34, n) * cell
    elongated = rng.random(n) < 0.5
    major = np.where(elongated, np.minimum(radius * 1.35, 0.38 * cell), radius)
    minor = np.where(elongated, radius * 0.55, radius)
    angle = rng.uniform(0, np.pi, n)
    brightness = rng.uniform(140, 210, n)

    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    cell_r = np.minimum((rows // cell).astype(np.int64), grid - 1)
    cell_c = np.minimum((columns // cell).astype(np.int64), grid - 1)
    index = cell_r * grid + cell_c
    dr, dc = rows - centre_r[index], columns - centre_c[index]
    cos, sin = np.cos(angle)[index], np.sin(angle)[index]
    u = dr * cos + dc * sin
    v = -dr * sin + dc * cos
    inside = (u / major[index]) ** 2 + (v / minor[index]) ** 2 <= 1.0

    mask = np.where(inside, index + 1, 0).astype(np.uint16)
    image = rng.normal(40.0, 6.0, (size, size)).astype(np.float32)
    image = np.where(inside, brightness[index] + rng.normal(0, 8, (size, size)), image)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_project(data_root: Path, size: int = 1024, grid: int = 20,
                 seed: int = 0) -> tuple[Project, str, Path]:
    """Write the image PNG and mask TIFF under ``<data_root>/projects/bench`` and register them."""
    import imageio.v3 as iio
    import tifffile

    folder = data_root / "projects" / PROJECT
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    image, mask = draw_scene(size, grid, seed)
    image_path = folder / "images" / "bench_A01.png"
    mask_path = folder / "masks" / "bench_A01.tif"
    iio.imwrite(image_path, image)
    tifffile.imwrite(mask_path, mask, compression="zlib")
    project = Project.open_or_create(folder)
    project.add_image(image_path, mask_path, axes="YX", well="A01")
    for name, colour in CLASSES.items():
        project.add_class(name, colour)
    return project, image_path.name, mask_path


# ---------------------------------------------------------------------------- in-page probes

# Installed before the app's own scripts: WebSocket frames with performance.now() time stamps
# (top-level protobuf field numbers of each ForwardMsg, so "script_finished" is recognised
# without shipping the bytes to Python), the last mousedown, and helpers that look into the
# shadow roots the canvas component renders in.
INIT_SCRIPT = r"""
(() => {
  const log = [];
  window.__ws = log;
  window.__wsLast = 0;
  const fields = (buffer) => {
    const b = new Uint8Array(buffer);
    const out = [];
    let i = 0;
    const varint = () => {
      let x = 0, s = 0, c;
      do { c = b[i++]; x += (c & 127) * 2 ** s; s += 7; } while (c & 128 && i < b.length);
      return x;
    };
    while (i < b.length && out.length < 8) {
      const tag = varint(), wire = tag % 8, field = Math.floor(tag / 8);
      out.push(field);
      if (wire === 0) varint();
      else if (wire === 2) { const n = varint(); i += n; }
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else break;
    }
    return out;
  };
  const size = (d) => d.byteLength ?? d.size ?? d.length ?? 0;
  const bytes = (d) => d instanceof ArrayBuffer ? d
    : (ArrayBuffer.isView(d) ? d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength) : null);
  const Original = window.WebSocket;
  const originalSend = Original.prototype.send;
  Original.prototype.send = function (data) {
    window.__wsLast = performance.now();
    const b = bytes(data);
    log.push({dir: 's', t: window.__wsLast, n: size(data), f: b ? fields(b) : []});
    return originalSend.call(this, data);
  };
  function Patched(...args) {
    const ws = new Original(...args);
    ws.addEventListener('message', (event) => {
      window.__wsLast = performance.now();
      const d = event.data;
      const b = bytes(d);
      log.push({dir: 'r', t: window.__wsLast, n: size(d), f: b ? fields(b) : []});
    });
    return ws;
  }
  Patched.prototype = Original.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Patched[k] = Original[k];
  window.WebSocket = Patched;

  window.__mousedown = 0;
  window.addEventListener('mousedown', (e) => { window.__mousedown = performance.now(); }, true);

  window.__deep = (selector, root = document) => {
    const found = root.querySelector(selector);
    if (found) return found;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const x = window.__deep(selector, el.shadowRoot); if (x) return x; }
    }
    return null;
  };
  window.__canvases = () => {
    const found = [];
    const walk = (root, host) => {
      for (const c of root.querySelectorAll('canvas.upper-canvas')) {
        const box = host && host.closest('[class*="st-key-"]');
        const key = box ? [...box.classList].find((k) => k.startsWith('st-key-')) : null;
        const r = c.getBoundingClientRect();
        found.push({key, stale: box ? box.getAttribute('data-stale') : null,
                    x: r.left, y: r.top, width: r.width, height: r.height});
      }
      for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot, el);
    };
    walk(document, null);
    return found;
  };
  window.__deepAll = (selector, root = document, out = []) => {
    out.push(...root.querySelectorAll(selector));
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) window.__deepAll(selector, el.shadowRoot, out);
    }
    return out;
  };
  // The shown canvas's background (an earlier canvas may linger with zero height).
  window.__background = () => window.__deepAll('canvas.dc-background-canvas')
    .find((c) => c.getBoundingClientRect().height > 0) || null;
  window.__pixel = (x, y) => {
    const c = window.__background();
    if (!c || !c.width) return null;
    const p = c.getContext('2d').getImageData(x, y, 1, 1).data;
    return [p[0], p[1], p[2], p[3]];
  };
  window.__watchText = (text) => {
    window.__textSeen = 0;
    const check = () => {
      if (!window.__textSeen && document.body.textContent.includes(text)) {
        window.__textSeen = performance.now();
        obs.disconnect();
      }
    };
    const obs = new MutationObserver(check);
    obs.observe(document.body, {childList: true, subtree: true, characterData: true});
    check();
  };
  window.__watchPixel = (x, y, before) => {
    window.__pixelChanged = 0;
    const tick = () => {
      const p = window.__pixel(x, y);
      const moved = p && before ? Math.abs(p[0] - before[0]) + Math.abs(p[1] - before[1])
        + Math.abs(p[2] - before[2]) : 0;
      if (p && p[3] > 0 && moved > 24) {
        window.__pixelChanged = performance.now();
        return;
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  };
})();
"""

SCRIPT_FINISHED = 6  # ForwardMsg field number of script_finished
FIELDS = {"r": {1: "hash", 2: "metadata", 4: "new_session", 5: "delta", 6: "script_finished",
                12: "page_info_changed", 9: "session_status_changed", 10: "session_event",
                23: "navigation", 26: "heartbeat_ack", 11: "ref_hash"},
          "s": {11: "rerun_script", 17: "app_heartbeat", 7: "stop_script"}}
RERUN_SCRIPT = 11  # BackMsg field number of rerun_script


def _quantiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {}
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "max": float(a.max()), "n": int(a.size)}


def _fmt(q: dict[str, float]) -> str:
    if not q:
        return "n/a"
    return (f"median {q['median']:.0f} ms, p90 {q['p90']:.0f}, min {q['min']:.0f}, "
            f"max {q['max']:.0f} (n={q['n']})")


def _wait_idle(page, quiet_ms: float = 250, timeout_s: float = 30) -> bool:
    """Until no WebSocket frame for ``quiet_ms``; False (and a note) if that never happens."""
    try:
        page.wait_for_function(f"() => performance.now() - window.__wsLast > {quiet_ms}",
                               timeout=timeout_s * 1000, polling=50)
        return True
    except Exception as error:  # noqa: BLE001 - a busy page is reported, not fatal
        print(f"note: the page was not idle for {quiet_ms} ms within {timeout_s} s "
              f"({type(error).__name__})", file=sys.stderr)
        return False


def _canvas_drawn_js() -> str:
    return """() => {
        const up = window.__deepAll('canvas.upper-canvas')
            .find((u) => u.getBoundingClientRect().height > 0);
        if (!up) return false;
        const c = window.__background();
        if (!c || !c.width) return false;
        const p = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
        return p[3] > 0;
    }"""


def first_paint(url: str, browser_page, width: int, height: int) -> tuple[float, dict]:
    """ms from page.goto until the heading, the canvas and its background image are there,
    and in-page milestones (ms after navigation start)."""
    with browser_page(width, height) as page:
        page.add_init_script(INIT_SCRIPT)
        start = time.perf_counter()
        page.goto(f"{url}/annotate?project={PROJECT}", wait_until="commit")
        page.get_by_role("heading", name="Annotate", exact=True).wait_for()
        page.locator("canvas.upper-canvas").wait_for()
        page.wait_for_function(_canvas_drawn_js(), polling="raf")
        elapsed = (time.perf_counter() - start) * 1000
        milestones = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const r = window.__ws.filter((f) => f.dir === 'r');
            const big = r.find((f) => f.n > 100000);
            const scripts = performance.getEntriesByType('resource')
                .filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js'));
            return {
                document: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd,
                load: nav.loadEventEnd,
                scripts_end: Math.max(0, ...scripts.map((e) => e.responseEnd)),
                scripts_kib: scripts.reduce((a, e) => a + (e.transferSize || 0), 0) / 1024,
                first_message: r.length ? r[0].t : null,
                image_message: big ? big.t : null, image_kib: big ? big.n / 1024 : null,
                drawn: performance.now(),
            };
        }""")
        return elapsed, milestones


def click_run(url: str, browser_page, project: Project, image: str, table, n_clicks: int,
              width: int, height: int, n_floor: int = 10, seed: int = 1) -> dict:
    """Click ``n_clicks`` unlabelled objects one by one; per-click timings and checks."""
    first_class = next(iter(CLASSES))
    rng = np.random.default_rng(seed)
    labelled = set(project.labels(image)["label"].tolist())
    candidates = table[~table["label"].isin(labelled)]
    targets = candidates.iloc[rng.permutation(len(candidates))[:n_clicks]]
    clicks = []
    with browser_page(width, height) as page:
        page.add_init_script(INIT_SCRIPT)
        page.goto(f"{url}/annotate?project={PROJECT}")
        page.get_by_role("heading", name="Annotate", exact=True).wait_for()
        page.wait_for_function(_canvas_drawn_js(), polling="raf")
        _wait_idle(page, 500)
        layout = page.evaluate("""() => {
            const up = window.__deep('canvas.upper-canvas');
            const sc = window.__deep('.dc-scroll');
            return {canvas: up.width, visible: sc ? sc.clientWidth : null};
        }""")
        for target in targets.itertuples():
            label = int(target.label)
            # With a new canvas key per click the old canvas lingers for a while (and now and
            # then stays in the page with zero height): wait for one canvas that is shown.
            page.wait_for_function(
                "() => window.__canvases().filter((c) => c.height > 0).length === 1",
                polling=20, timeout=15_000)
            canvases = page.evaluate("() => window.__canvases()")
            box = next(c for c in canvases if c["height"] > 0)
            hidden = len(canvases) - 1
            scale = box["width"] / layout["canvas"]
            cx, cy = float(target.centroid_column), float(target.centroid_row)
            x, y = box["x"] + cx * scale, box["y"] + cy * scale
            text = f"objects [{label}]"
            before = page.evaluate(f"() => window.__pixel({int(cx)}, {int(cy)})")
            n_frames = page.evaluate("() => window.__ws.length")
            page.evaluate(f"() => {{ window.__watchText({json.dumps(text)});"
                          f" window.__watchPixel({int(cx)}, {int(cy)}, {json.dumps(before)}); }}")
            t0 = time.perf_counter()
            page.mouse.click(x, y)
            # Polled on every animation frame: Locator.wait_for backs off to 100-500 ms.
            shown, caption = True, None
            try:
                page.wait_for_function("(t) => document.body.textContent.includes(t)",
                                       arg=text, polling="raf", timeout=15_000)
                t1 = time.perf_counter()
                page.get_by_text(text).wait_for(timeout=5_000)  # the same text, as a locator
            except Exception:  # noqa: BLE001 - a lost click is counted, not fatal
                shown, t1 = False, None
                caption = page.evaluate("() => { const m = document.body.textContent"
                                        ".match(/Last: [^\\]]*\\]|Click an object[^.]*/);"
                                        " return m ? m[0] : null; }")
                print(f"note: click {len(clicks) + 1} on object {label}: no caption for it "
                      f"within 15 s (the page shows {caption!r})", file=sys.stderr)
            try:
                page.wait_for_function("() => window.__pixelChanged > 0", timeout=10_000,
                                       polling="raf")
            except Exception:  # noqa: BLE001 - recorded as a missing value
                pass
            _wait_idle(page)
            probe = page.evaluate(f"""() => ({{
                origin: performance.timeOrigin,
                down: window.__mousedown, text: window.__textSeen, pixel: window.__pixelChanged,
                frames: window.__ws.slice({n_frames})
            }})""")
            stored = project.labels(image).set_index("label")
            ok = label in stored.index and stored.loc[label, "class"] == first_class
            frames = [f for f in probe["frames"] if f["t"] >= probe["down"]]
            sends = [f for f in frames if f["dir"] == "s" and RERUN_SCRIPT in f["f"]]
            finished = [f for f in frames if f["dir"] == "r" and SCRIPT_FINISHED in f["f"]]
            first_send = sends[0]["t"] if sends else None
            server = None
            if first_send is not None:
                after = [f["t"] for f in finished if f["t"] >= first_send]
                server = after[0] - first_send if after else None
            clicks.append({
                "label": label, "stored": bool(ok), "shown": shown, "caption": caption,
                "hidden_canvases": hidden,
                "down_epoch_s": (probe["origin"] + probe["down"]) / 1000,
                "wall_ms": (t1 - t0) * 1000 if shown else None,
                "dom_ms": probe["text"] - probe["down"] if probe["text"] else None,
                "send_ms": first_send - probe["down"] if first_send is not None else None,
                "send_bytes": sends[0]["n"] if sends else None,
                "server_ms": server,
                "recoloured_ms": (probe["pixel"] - probe["down"]) if probe["pixel"] else None,
                "runs": len(finished), "sends": len(sends),
                "received": sum(1 for f in frames if f["dir"] == "r"),
                "received_bytes": sum(f["n"] for f in frames if f["dir"] == "r"),
                "frames": [[f["dir"], round(f["t"] - probe["down"], 1), f["n"],
                            [FIELDS[f["dir"]].get(x, x) for x in f["f"][:3]]] for f in frames],
            })
        # The floor: a rerun of the whole page that stores nothing (the class radio; the
        # caption then names the other class), same page, same session, no canvas debounce.
        floor = []
        names = list(CLASSES)
        for k in range(n_floor):
            name = names[(k + 1) % len(names)]
            box = page.locator("label").filter(has_text=f"{name} (").first.bounding_box()
            text = f"Last: {name} ←"
            page.evaluate(f"() => window.__watchText({json.dumps(text)})")
            t0 = time.perf_counter()
            page.mouse.click(box["x"] + 12, box["y"] + box["height"] / 2)
            page.wait_for_function("(t) => document.body.textContent.includes(t)", arg=text,
                                   polling="raf", timeout=30_000)
            t1 = time.perf_counter()
            _wait_idle(page)
            probe = page.evaluate("() => window.__textSeen - window.__mousedown")
            floor.append({"wall_ms": (t1 - t0) * 1000, "dom_ms": probe})
    return {"layout": layout, "clicks": clicks, "floor": floor}


def versions() -> dict[str, str]:
    import streamlit

    try:
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
    except OSError as error:
        chromium = f"unavailable ({error})"
    return {"python": sys.version.split()[0], "streamlit": streamlit.__version__,
            "streamlit-drawable-canvas": importlib.metadata.version("streamlit-drawable-canvas"),
            "playwright": importlib.metadata.version("playwright"), "chromium": chromium,
            "cpus": str(os.cpu_count())}


def browser_server_of(app_dir: Path):
    """``tests/browser_server.py`` of the app copy in ``app_dir`` (which it serves), or None
    after saying why the browser cannot run."""
    sys.path.insert(0, str(app_dir.resolve()))
    for name in [m for m in sys.modules if m == "tests" or m.startswith("tests.")]:
        del sys.modules[name]
    server = importlib.import_module("tests.browser_server")
    if server.chromium_missing():
        print(f"cannot run: {server.chromium_missing()}", file=sys.stderr)
        return None
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--floor", type=int, default=10,
                        help="page reruns (class radio) measured after the clicks, as the floor")
    parser.add_argument("--width", type=int, default=2000,
                        help="viewport width; the 1024 px canvas must fit its column")
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--grid", type=int, default=20, help="grid**2 objects")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="run the app (and tests/browser_server.py) from this copy")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "ui_click.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data root")
    args = parser.parse_args(argv)

    server = browser_server_of(args.app_dir)
    if server is None:
        return 2

    load_before = os.getloadavg()
    data_root = Path(tempfile.mkdtemp(prefix="svetlana-ui-click-"))
    try:
        project, image, mask_path = make_project(data_root, args.size, args.grid)
        import tifffile

        table = object_table(tifffile.imread(mask_path))
        print(f"project: 1 image {args.size}x{args.size}, {len(table)} objects, "
              f"{len(CLASSES)} classes, data root {data_root}")
        with server.app_server(data_root) as url:
            paints = [first_paint(url, server.browser_page, args.width, args.height)
                      for _ in range(args.loads)]
            loads = [p[0] for p in paints]
            run = click_run(url, server.browser_page, project, image, table, args.clicks,
                            args.width, args.height, args.floor)
        load_after = os.getloadavg()
        clicks = run["clicks"]
        stored = sum(c["stored"] for c in clicks)

        def col(name):
            return [c[name] for c in clicks if c[name] is not None]

        summary = {
            "versions": versions(), "objects": int(len(table)), "clicks": len(clicks),
            "stored": int(stored), "viewport": [args.width, args.height],
            "canvas_layout": run["layout"], "app_dir": str(args.app_dir.resolve()),
            "loadavg_before": load_before, "loadavg_after": load_after,
            "first_paint_ms": loads, "first_paint": _quantiles(loads),
            "first_paint_milestones_ms": [p[1] for p in paints],
            "click_to_label": _quantiles(col("wall_ms")),
            "in_page_click_to_text": _quantiles(col("dom_ms")),
            "click_to_send": _quantiles(col("send_ms")),
            "send_to_script_finished": _quantiles(col("server_ms")),
            "click_to_recoloured": _quantiles(col("recoloured_ms")),
            "script_runs_per_click": _quantiles(col("runs")),
            "bytes_received_per_click": _quantiles(col("received_bytes")),
            "bytes_sent_per_click": _quantiles(col("send_bytes")),
            "page_rerun_floor": _quantiles([f["wall_ms"] for f in run["floor"]]),
            "in_page_page_rerun_floor": _quantiles([f["dom_ms"] for f in run["floor"]]),
            "per_click": clicks,
        }
        print("versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
        print(f"load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, "
              f"after {tuple(round(x, 2) for x in load_after)}")
        print(f"viewport {args.width}x{args.height}; canvas {run['layout']['canvas']} px wide, "
              f"{run['layout']['visible']} px visible")
        if run["layout"]["visible"] and run["layout"]["visible"] < run["layout"]["canvas"]:
            print("WARNING: the canvas is wider than its column (it scrolls); clicks on its "
                  "right part miss: use a wider --width", file=sys.stderr)
        print("first paint (goto -> 'Annotate' heading visible, canvas.upper-canvas visible, "
              "background image drawn): " + ", ".join(f"{x:.0f}" for x in loads) + " ms; "
              + _fmt(summary["first_paint"]))
        marks = {k: float(np.median([p[1][k] or np.nan for p in paints]))
                 for k in paints[0][1]}
        print("  in page, median ms after navigation start: "
              + ", ".join(f"{k} {v:.0f}" for k, v in marks.items()))
        print(f"clicks: {len(clicks)} on {len(table)} objects; labels stored: {stored}; "
              f"caption shown: {sum(c['shown'] for c in clicks)}")
        print("click-to-label (mouse.click -> caption 'objects [<label>]' in the page, "
              "polled every frame): " + _fmt(summary["click_to_label"]))
        print("  in page, mousedown -> caption in DOM: " + _fmt(summary["in_page_click_to_text"]))
        print("  mousedown -> drawing sent (canvas debounce): " + _fmt(summary["click_to_send"]))
        print("  drawing sent -> script_finished: " + _fmt(summary["send_to_script_finished"]))
        print("  mousedown -> object recoloured on the canvas: "
              + _fmt(summary["click_to_recoloured"]))
        lingering = sum(c["hidden_canvases"] > 0 for c in clicks)
        if lingering:
            print(f"  before {lingering} clicks an earlier canvas was still in the page "
                  "(hidden, zero height)")
        q = summary["script_runs_per_click"]
        b = summary["bytes_received_per_click"]
        print(f"  script runs per click: median {q['median']:.0f} (min {q['min']:.0f}, max "
              f"{q['max']:.0f}); received per click: median {b['median'] / 1024:.0f} KiB")
        print("floor: a page rerun that stores nothing (class radio -> caption 'Last: <class> "
              "←'): " + _fmt(summary["page_rerun_floor"]) + "; in page "
              + _fmt(summary["in_page_page_rerun_floor"]))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
        print(f"written {args.json}")
        if stored < args.clicks:
            print(f"FAILED: only {stored} of {args.clicks} labels stored", file=sys.stderr)
            return 1
        return 0
    finally:
        if args.keep:
            print(f"kept {data_root}")
        else:
            shutil.rmtree(data_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
