"""Start the app on 127.0.0.1 and drive it with Debian's Chromium (shared by the browser tests
and bench/ui_click.py). Never downloads a browser: ``playwright install`` is not used."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (install Debian's chromium: apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (requirements-dev.txt)"
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def app_server(data_root: Path, timeout: float = 60.0, with_process: bool = False):
    """Run ``streamlit run app.py`` on a free loopback port; yields the base URL.

    With ``with_process``, yields ``(url, process)`` instead: the crash tests kill the server
    themselves. A server that is already dead is left as it is at exit.
    """
    port = free_port()
    env = {**os.environ, "SVETLANA_DATA_ROOT": str(data_root), "NO_ALBUMENTATIONS_UPDATE": "1"}
    log = open(data_root / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start; see {data_root / 'server.log'}")
            time.sleep(0.2)
        yield (url, process) if with_process else url
    except BaseException:
        # a failing browser test shows what the server said (pytest prints captured stderr)
        log.flush()
        tail = (data_root / "server.log").read_text(errors="replace").splitlines()[-40:]
        print("--- server.log (last 40 lines) ---", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        process.terminate()  # does nothing to a process already reaped
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1800):
    """A Playwright page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _box_now(locator) -> dict | None:
    """The element's box, or None when it went away meanwhile (a canvas being replaced by
    the next run: waiting for it would wait for an element that no longer exists)."""
    from playwright.sync_api import Error

    try:
        return locator.bounding_box(timeout=500)
    except Error:
        return None


def settled_canvas_box(page) -> dict:
    """The one canvas shown, once its size stopped changing (the page sizes it to its column
    after the browser reported the column's width: one more run)."""
    canvas = page.locator("canvas.upper-canvas")
    canvas.first.wait_for()
    last, stable = None, 0
    deadline = time.monotonic() + 30
    while stable < 3 and time.monotonic() < deadline:
        boxes = [b for b in (_box_now(c) for c in canvas.all()) if b and b["height"] > 0]
        box = boxes[0] if len(boxes) == 1 else None
        stable = stable + 1 if box is not None and box == last else 0
        last = box
        time.sleep(0.3)
    assert last is not None, "no single canvas settled"
    return last
