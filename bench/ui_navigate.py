"""Annotate-page navigation benchmark: an 8000² image with 10,000 objects in headless Chromium.

Run from the repository root::

    python bench/ui_navigate.py                          # the navigation of this tree
    python bench/ui_navigate.py --legacy --app-dir /tmp/before   # the sliders of an older copy
    python bench/ui_navigate.py --memory                 # server RSS, 6 projects + the 8000²

What it does:

1. Makes (or takes, ``--data DIR`` with ``image.tif`` and ``mask.tif``) the 8000 x 8000 uint8
   image and uint32 mask of 10,000 objects of ``../shared/peer/make_synthetic.py --size 8000
   --objects 10000`` and registers it in a project ``big`` with 2 classes.
2. Starts the app (``tests/browser_server.app_server``), opens ``/annotate?project=big`` at
   ``--width`` x ``--height`` and waits until the page is idle.
3. Navigation steps, one at a time. Default: the keyboard shortcuts of the navigation buttons
   (I four times: zoom 1 → 16; Right, Right, Down, Down: pans by half a view; O twice; W:
   the whole image), then three small boxes dragged on the overview and three
   double-clicks on the canvas. ``--legacy`` (the page before the navigation existed): the
   zoom select-slider moved with the arrow keys (1 → 16 and back) and the centre sliders
   moved with End / Home.
   Per step:

   * **server**: from the ``rerun_script`` message the browser sends to the
     ``script_finished`` message of that run (the script run, its deltas and the preview's
     bytes on the WebSocket: what the server spends on the step);
   * **settled**: from the key press / click to the last WebSocket frame before the page
     is idle (no frame for 250 ms), in the page's ``performance.now()``;
   * **drawn**: from the key press / click until the new view's canvas has its background
     drawn (an opaque pixel in the middle of ``canvas.dc-background-canvas``);
   * script runs per step.
4. ``--memory``: adds five more projects (the demo project, copies), opens each one's
   Annotate page, then the 8000² image, and reads the server's RSS (``/proc/<pid>/status``
   VmRSS and VmHWM) after each.

Prints the figures with the load average before and after and writes JSON to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from bench.ui_click import (  # noqa: E402
    INIT_SCRIPT, _quantiles, _wait_idle, browser_server_of, versions)

SYNTHETIC = ROOT.parent / "shared" / "peer" / "make_synthetic.py"

# A view is drawn: one shown canvas whose background has an opaque pixel in its middle;
# returns its key so a step waits for a canvas other than the one before.
DRAWN_JS = """(before) => {
    const shown = window.__canvases().filter((c) => c.height > 0);
    if (shown.length !== 1 || shown[0].key === before) return false;
    const c = window.__background();
    if (!c || !c.width) return false;
    const p = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
    return p[3] > 0 ? shown[0].key || 'none' : false;
}"""


def make_data(folder: Path) -> Path:
    """The 8000² / 10,000-object image of make_synthetic.py in ``folder`` (about 10 s)."""
    subprocess.run([sys.executable, str(SYNTHETIC), "--size", "8000", "--objects", "10000",
                    "--out", str(folder)], check=True, capture_output=True)
    return folder


def make_project(data_root: Path, data: Path, name: str = "big"):
    from svetlana_core.store import Project

    project = Project.open_or_create(data_root / "projects" / name)
    project.add_image(data / "image.tif", data / "mask.tif")
    project.add_class("large", "#1f77b4")
    project.add_class("small", "#ff7f0e")
    return project


def _shown_key(page) -> str | None:
    shown = [c for c in page.evaluate("() => window.__canvases()") if c["height"] > 0]
    return shown[0]["key"] if len(shown) == 1 else None


def _step(page, action, timeout_s: float = 60) -> dict:
    """Run one navigation action; its server, settled and drawn times."""
    before = _shown_key(page)
    n = page.evaluate("() => window.__ws.length")
    t0 = page.evaluate("() => performance.now()")
    action()
    drawn = None
    try:
        page.wait_for_function(DRAWN_JS, arg=before, polling="raf", timeout=timeout_s * 1000)
        drawn = page.evaluate("() => performance.now()") - t0
    except Exception:  # noqa: BLE001 - a step that changes no view is reported as such
        print("note: no new view drawn after a step", file=sys.stderr)
    _wait_idle(page, 250)
    frames = page.evaluate(f"() => window.__ws.slice({n})")
    frames = [f for f in frames if f["t"] >= t0]
    sends = [f for f in frames if f["dir"] == "s" and 11 in f["f"]]
    finished = [f for f in frames if f["dir"] == "r" and 6 in f["f"]]
    server = None
    if sends:
        after = [f["t"] for f in finished if f["t"] >= sends[0]["t"]]
        server = after[0] - sends[0]["t"] if after else None
    return {"server_ms": server, "drawn_ms": drawn,
            "settled_ms": max(f["t"] for f in frames) - t0 if frames else None,
            "runs": len(finished), "received_kib": sum(f["n"] for f in frames
                                                         if f["dir"] == "r") / 1024}


def _open(page, url: str, project: str = "big") -> None:
    page.add_init_script(INIT_SCRIPT)
    page.goto(f"{url}/annotate?project={project}")
    page.get_by_role("heading", name="Annotate", exact=True).wait_for()
    page.wait_for_function(DRAWN_JS, arg="", polling="raf", timeout=120_000)
    _wait_idle(page, 1000, timeout_s=120)


def navigation_steps(page) -> list[tuple[str, object]]:
    """(name, action) of the steps on the current page."""
    def key(k):
        return lambda: page.keyboard.press(k)

    def overview(fx, fy):
        def box():  # a 24-px box: a click alone is not reported (see RESULTS.md)
            b = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            x, y = b["x"] + fx * b["width"], b["y"] + fy * b["height"]
            page.mouse.move(x - 12, y - 12)
            page.mouse.down()
            page.mouse.move(x + 12, y + 12, steps=4)
            page.mouse.up()
        return box

    def double(fx, fy):
        def click():
            shown = [c for c in page.evaluate("() => window.__canvases()") if c["height"] > 0]
            c = shown[0]
            page.mouse.dblclick(c["x"] + fx * c["width"], c["y"] + fy * c["height"])
        return click

    steps = [("zoom in (I)", key("i"))] * 4 + [("pan right (→)", key("ArrowRight"))] * 2
    steps += [("pan down (↓)", key("ArrowDown"))] * 2 + [("zoom out (O)", key("o"))] * 2
    steps += [("whole image (W)", key("w"))]
    steps += [("overview box", overview(fx, fy)) for fx, fy in ((0.2, 0.3), (0.8, 0.7),
                                                                   (0.5, 0.5))]
    steps += [("whole image (W)", key("w"))]
    steps += [("double-click on the canvas", double(fx, fy))
              for fx, fy in ((0.3, 0.3), (0.6, 0.5), (0.5, 0.5))]
    return steps


def legacy_steps(page) -> list[tuple[str, object]]:
    """The sliders of the page before the navigation: zoom select-slider and centre sliders."""
    def slider(label, k):
        def move():
            thumbs = page.locator(f'[data-testid="stSlider"]:has-text("{label}") input')
            thumbs.first.focus()
            page.keyboard.press(k)
        return move

    steps = [("zoom in (slider →)", slider("Zoom", "ArrowRight"))] * 4
    steps += [("pan (centre column End)", slider("Centre column", "End")),
              ("pan (centre row End)", slider("Centre row", "End")),
              ("pan (centre column Home)", slider("Centre column", "Home")),
              ("pan (centre row Home)", slider("Centre row", "Home"))]
    steps += [("zoom out (slider ←)", slider("Zoom", "ArrowLeft"))] * 4
    return steps


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def memory_run(server, data_root: Path, width: int, height: int,
               legacy: bool = False) -> list[dict]:
    """Open the Annotate page of five small projects, then of the 8000² image; RSS after each."""
    from svetlana_core.demo import create_demo

    names = [f"demo{k}" for k in range(1, 6)]
    for name in names:
        create_demo(data_root / "projects" / name)
    out = []
    with server.app_server(data_root, with_process=True) as (url, process):
        out.append({"after": "server start", "rss_hwm_mb": rss_mb(process.pid)})
        for name in names + ["big"]:
            with server.browser_page(width, height) as page:
                _open(page, url, name)
                if name == "big":  # and move around it: every level and zoom touched
                    steps = legacy_steps(page) if legacy else navigation_steps(page)[:11]
                    for _, action in steps:
                        _step(page, action)
            out.append({"after": f"opened {name}", "rss_hwm_mb": rss_mb(process.pid)})
            print(f"  after {name}: RSS {out[-1]['rss_hwm_mb'][0]:.0f} MB "
                  f"(peak {out[-1]['rss_hwm_mb'][1]:.0f})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--legacy", action="store_true",
                        help="drive the sliders of a page without the navigation buttons")
    parser.add_argument("--memory", action="store_true", help="server RSS instead of steps")
    parser.add_argument("--data", type=Path, help="folder with image.tif and mask.tif")
    parser.add_argument("--app-dir", type=Path, default=ROOT)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "ui_navigate.json")
    args = parser.parse_args(argv)

    server = browser_server_of(args.app_dir)
    if server is None:
        return 2
    load_before = os.getloadavg()
    data_root = Path(tempfile.mkdtemp(prefix="svetlana-ui-navigate-"))
    try:
        data = args.data or make_data(data_root / "synthetic")
        make_project(data_root, data)
        summary = {"versions": versions(), "app_dir": str(args.app_dir.resolve()),
                   "viewport": [args.width, args.height], "legacy": args.legacy,
                   "cache_mb": os.environ.get("SVETLANA_CACHE_MB")}
        if args.memory:
            summary["memory"] = memory_run(server, data_root, args.width, args.height,
                                           args.legacy)
        else:
            with server.app_server(data_root) as url, \
                    server.browser_page(args.width, args.height) as page:
                t0 = time.perf_counter()
                _open(page, url)
                summary["first_open_s"] = time.perf_counter() - t0
                steps = []
                for name, action in (legacy_steps if args.legacy else navigation_steps)(page):
                    steps.append({"step": name, **_step(page, action)})
                    s = steps[-1]
                    print(f"  {name:28s} server {s['server_ms'] or float('nan'):7.0f} ms  "
                          f"drawn {s['drawn_ms'] or float('nan'):7.0f}  settled "
                          f"{s['settled_ms'] or float('nan'):7.0f}  runs {s['runs']}  "
                          f"{s['received_kib']:.0f} KiB")
            summary["steps"] = steps
            for name in ("server_ms", "drawn_ms", "settled_ms"):
                summary[name] = _quantiles([s[name] for s in steps if s[name] is not None])
                q = summary[name]
                print(f"{name}: median {q['median']:.0f}, p90 {q['p90']:.0f}, max "
                      f"{q['max']:.0f} (n={q['n']})")
        summary["loadavg_before"], summary["loadavg_after"] = load_before, os.getloadavg()
        print(f"load average before {tuple(round(x, 2) for x in load_before)}, after "
              f"{tuple(round(x, 2) for x in summary['loadavg_after'])}")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1, default=str))
        print(f"written {args.json}")
        return 0
    finally:
        shutil.rmtree(data_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
