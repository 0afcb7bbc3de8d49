"""Soak benchmark: N simulated users label objects and browse the dashboard on one app server.

Run from the repository root::

    python bench/soak.py                        # 5 users for 120 s
    python bench/soak.py --users 20 --seconds 120
    python bench/soak.py --users 5 --seconds 30 --no-auto-rerun --json /tmp/soak.json
    python bench/soak.py --users 20 --post-script-gc on   # Streamlit's default GC after each run

What it does:

1. Creates the demo project (``svetlana_core.demo.create_demo``) in a temporary data root,
   larger than the app's demo so the users do not run out of objects: 4 images of
   ``--size`` pixels with ``--objects`` objects each (default 768 px, 400 objects, 36 of
   them pre-labelled). It adds a finished model run whose predictions are the ground truth
   (no training: the Dashboard only reads predictions), so the Dashboard draws its tables
   and plate heat map.
2. Starts the app with ``tests/browser_server.app_server`` (``streamlit run app.py`` on a
   free 127.0.0.1 port, the data root in ``SVETLANA_DATA_ROOT``), and makes one warm-up
   page load (the first run of a fresh server imports the pages: ~3 s, not counted).
3. Runs ``--users`` simulated browsers at once for ``--seconds``. Each is a WebSocket client
   speaking Streamlit's own protocol on ``/_stcore/stream`` (subprotocol ``streamlit``;
   ``BackMsg.rerun_script`` with a ``ClientState``: query string, page name, widget states,
   fragment id), which is what the browser sends; it reads ``ForwardMsg`` until the
   ``script_finished`` that ends the run, and fetches the ``/media/`` images the run
   shows, as a browser does. A user:

   * opens ``/annotate?project=demo&image=demo_<well>.png`` (users spread over the 4
     images, several per image, so they label the same images at the same time), types
     its name (``soak-<k>``, the author recorded with each label) and picks the Guided mode;
   * then repeats, with a think time drawn uniformly from ``--think`` (default 0.5–1 s)
     after each action: with probability ``--dashboard`` (default 0.1) opens the Dashboard
     and goes back to Annotate (two page runs), otherwise clicks one of the guided mode's
     class buttons at random (one label per click, stored by the button's callback, then
     the fragment reruns). When its image has no object left it picks the next image;
   * when the server asks for it (an ``auto_rerun`` message: the sidebar's jobs fragment
     ticks every 2 s while a job is queued or running, so not in this benchmark, which
     starts no job), reruns that fragment every 2 s as the browser does
     (``is_auto_rerun``; off with ``--no-auto-rerun``).

   A **request** is one ``rerun_script`` message; its **latency** runs from the send to
   the ``script_finished`` that ends it (after any ``st.rerun`` it caused: a run stopped
   for a rerun reports ``FINISHED_EARLY_FOR_RERUN``, when its messages are not dropped).
   A request is an **error** when it shows an exception element,
   does not finish within 60 s, or its connection drops. A label is **acknowledged** when
   the click's request finished without an exception; the client notes the object it was
   shown ("object <label> · …", the caption of the last run before the click).
4. After the run, reads ``Project.history`` of every object of the project and checks that
   each user's rows, in id order, pair one to one with its acknowledged clicks (same image,
   same class): none lost, none unacknowledged. It counts the clicks whose row is on
   another object than the one shown (before commit 47abe6e the guided mode labelled the
   object it computed when the click arrived, which another user may have labelled in
   between; now the button's callback binds the object shown: the count must be 0), and
   checks that every object written is in ``Project.labels()``.
5. Prints requests served, latency (p50, p95, max) per kind and overall, errors, labels
   acknowledged vs stored, the server's CPU time and RSS (psutil), the client's own CPU
   time (it shares the machine) and the load average before and after; writes every
   request as JSON to ``--json`` (default ``bench/out/soak_<users>.json``). Exits 1 when a
   label is missing or unacknowledged or on another object than shown, an error occurred
   or a user could not finish.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from svetlana_core.demo import DemoSpec, create_demo  # noqa: E402
from svetlana_core.store import Project

MAX_USERS = 50
MAX_SECONDS = 600
REQUEST_TIMEOUT = 60.0
AUTO_RERUN_EVERY = 2.0
OBJECT_CAPTION = re.compile(r"^object (\d+) ·")

# ---------------------------------------------------------------------------- set-up


def make_project(data_root: Path, size: int, objects: int, seed: int) -> Project:
    """The demo project, plus a finished model run predicting the ground truth."""
    project = create_demo(data_root / "projects" / "demo",
                          DemoSpec(size=size, n_objects=objects, seed=seed))
    model_dir = project.models_dir / "soak-truth"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.json").write_text(json.dumps({"arch": "cnn", "classes": []}))
    run = project.create_run("train", {"kind": "cnn", "config": {"arch": "cnn"}})
    project.update_run(run, status="done", model_dir=str(model_dir),
                       summary={"macro_f1": 1.0, "text": "ground truth (soak benchmark)"})
    truth = pd.read_csv(project.folder / "ground_truth.csv")
    for image, rows in truth.groupby("image"):
        project.save_predictions(str(model_dir), image, rows.assign(confidence=0.9))
    return project


def server_process():
    """The ``streamlit run`` child process started by ``app_server`` (psutil), or None."""
    try:
        import psutil
    except ImportError:
        return None
    for child in psutil.Process().children(recursive=True):
        try:
            if "streamlit" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


# ---------------------------------------------------------------------------- client


@dataclass
class Request:
    user: int
    kind: str                 # load, setup, label, dashboard, annotate, switch, auto
    start: float              # seconds since the soak started
    latency: float | None     # send -> script_finished that ends it; None on failure
    script_runs: int = 0
    exceptions: int = 0
    error: str = ""
    received: int = 0         # bytes of ForwardMsg
    media_bytes: int = 0
    media_seconds: float = 0.0


@dataclass
class Reply:
    """What one request brought back."""

    status: str = ""
    script_runs: int = 0
    exceptions: list[str] = field(default_factory=list)
    received: int = 0
    captions: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    # widget id -> (element type, label, fragment id)
    widgets: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    query_string: str | None = None
    fragments: dict[str, float] = field(default_factory=dict)  # auto-rerun fragment -> interval


class User:
    """One simulated browser tab: a WebSocket session and the widget states it sends."""

    def __init__(self, k: int, url: str, images: list[str], think: tuple[float, float],
                 dashboard: float, auto_rerun: bool, t0: float, deadline: float, seed: int):
        self.k, self.url, self.images = k, url, images
        self.author = f"soak-{k}"
        self.think, self.dashboard_share, self.auto_rerun = think, dashboard, auto_rerun
        self.t0, self.deadline = t0, deadline
        self.rng = random.Random(seed * 1000 + k)
        self.image = images[k % len(images)]
        self.query = f"project=demo&image={self.image}"
        self.states: dict[str, dict[str, object]] = {"annotate": {}, "dashboard": {}}
        self.widgets: dict[str, tuple[str, str, str]] = {}
        self.jobs_fragment = ""     # the sidebar's run_every fragment on the Annotate page
        self.guided: Reply | None = None
        self.requests: list[Request] = []
        self.acked: list[tuple[str, str, int, str]] = []
        self.last_auto = time.monotonic()
        self.ws = None
        self.http = None
        self.failed = ""

    # -- protocol

    async def connect(self) -> None:
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest
        from tornado.websocket import websocket_connect

        self.ws = await websocket_connect(
            HTTPRequest(self.url.replace("http://", "ws://") + "/_stcore/stream"),
            subprotocols=["streamlit"], max_message_size=256 * 1024 * 1024)
        self.http = AsyncHTTPClient(force_instance=True)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.http is not None:
            self.http.close()

    def _back_msg(self, page: str, extra: dict[str, object], fragment: str = "",
                  auto: bool = False) -> bytes:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        client = message.rerun_script
        client.query_string = self.query
        client.page_name = page
        client.fragment_id = fragment
        client.is_auto_rerun = auto
        for widget_id, value in {**self.states[page], **extra}.items():
            state = client.widget_states.widgets.add()
            state.id = widget_id
            if value is True:
                state.trigger_value = True
            elif isinstance(value, list):
                state.string_array_value.data.extend(value)
            else:
                state.string_value = str(value)
        return message.SerializeToString()

    async def _read_until_finished(self, reply: Reply) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        early = ForwardMsg.FINISHED_EARLY_FOR_RERUN
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                raise ConnectionError("the server closed the WebSocket")
            reply.received += len(raw)
            message = ForwardMsg()
            message.ParseFromString(raw)
            kind = message.WhichOneof("type")
            if kind == "script_finished":
                reply.script_runs += 1
                if message.script_finished != early:
                    reply.status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                    return
            elif kind == "page_info_changed":
                reply.query_string = message.page_info_changed.query_string
            elif kind == "auto_rerun":
                reply.fragments[message.auto_rerun.fragment_id] = message.auto_rerun.interval
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                name = element.WhichOneof("type")
                body = getattr(element, name)
                if name == "exception":
                    reply.exceptions.append(f"{body.type}: {body.message}")
                elif name == "imgs":
                    for img in body.imgs:
                        reply.captions.append(img.caption)
                        if img.url.startswith("/media/"):
                            reply.media.append(img.url)
                elif name == "alert":
                    reply.texts.append(body.body)
                if getattr(body, "id", ""):
                    reply.widgets[body.id] = (name, getattr(body, "label", ""),
                                              message.delta.fragment_id)

    async def request(self, kind: str, page: str, extra: dict[str, object] | None = None,
                      fragment: str = "", auto: bool = False) -> Reply | None:
        """Send one rerun, wait for its end, fetch its images; record it."""
        record = Request(self.k, kind, round(time.monotonic() - self.t0, 3), None)
        self.requests.append(record)
        reply = Reply()
        sent = time.monotonic()
        try:
            await self.ws.write_message(self._back_msg(page, extra or {}, fragment, auto),
                                        binary=True)
            await asyncio.wait_for(self._read_until_finished(reply), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            record.error = f"no script_finished within {REQUEST_TIMEOUT:.0f} s"
        except Exception as error:  # the connection dropped: this user stops here
            record.error = f"{type(error).__name__}: {error}"
        record.script_runs, record.received = reply.script_runs, reply.received
        record.exceptions = len(reply.exceptions)
        if record.error:
            self.failed = record.error
            return None
        record.latency = time.monotonic() - sent
        if reply.exceptions:
            record.error = "; ".join(reply.exceptions)[:300]
        self.widgets.update(reply.widgets)
        if page == "annotate" and reply.fragments and not fragment:
            self.jobs_fragment = next(iter(reply.fragments))
        if reply.query_string is not None:
            self.query = reply.query_string
        record.media_bytes, record.media_seconds = await self._fetch(reply.media)
        return reply

    async def _fetch(self, paths: list[str]) -> tuple[int, float]:
        start, size = time.monotonic(), 0
        for path in paths:
            try:
                response = await self.http.fetch(self.url + path, request_timeout=30)
                size += len(response.body)
            except Exception:  # noqa: BLE001 - a media miss is not the script's error
                pass
        return size, time.monotonic() - start

    def _widget(self, suffix: str, page_widgets: dict | None = None) -> str | None:
        ids = [w for w in (page_widgets or self.widgets) if w.endswith(suffix)]
        return ids[-1] if ids else None

    # -- behaviour

    async def open_annotate(self, kind: str) -> Reply | None:
        return await self.request(kind, "annotate")

    async def setup(self) -> bool:
        reply = await self.open_annotate("load")
        if reply is None:
            return False
        author, mode = self._widget("-author", reply.widgets), self._widget("-annotate_mode",
                                                                           reply.widgets)
        if author is None or mode is None:
            self.failed = "the Annotate page shows no author field or mode control"
            return False
        self.states["annotate"] = {author: self.author, mode: ["Guided"]}
        reply = await self.request("setup", "annotate")
        self.guided = reply
        return reply is not None

    def class_buttons(self, reply: Reply) -> list[tuple[str, str, str]]:
        return [(wid, label.split(" · ", 1)[1], fragment)
                for wid, (name, label, fragment) in reply.widgets.items()
                if name == "button" and "-guided_" in wid and " · " in label]

    async def label_one(self) -> bool:
        buttons = self.class_buttons(self.guided)
        shown = [int(m.group(1)) for m in map(OBJECT_CAPTION.match, self.guided.captions) if m]
        if not buttons or not shown:
            return await self.next_image()
        widget_id, class_name, fragment = self.rng.choice(buttons)
        reply = await self.request("label", "annotate", {widget_id: True}, fragment)
        if reply is None:
            return False
        self.guided = reply
        if not reply.exceptions and reply.status.startswith("FINISHED"):
            # The object this user was shown (the last caption before the click). The
            # click's own run may show another one (see check_store); the captions of the
            # click's run are not reliable either: Streamlit drops the unsent messages of a
            # run interrupted by st.rerun.
            self.acked.append((self.author, self.image, shown[-1], class_name))
        return True

    async def next_image(self) -> bool:
        box = self._widget("-annotate_image")
        position = self.images.index(self.image)
        self.image = self.images[(position + 1) % len(self.images)]
        if box is not None:
            self.states["annotate"][box] = self.image
        self.query = f"project=demo&image={self.image}"
        reply = await self.request("switch", "annotate")
        if reply is None:
            return False
        self.guided = reply
        return True

    async def browse_dashboard(self) -> bool:
        if await self.request("dashboard", "dashboard") is None:
            return False
        reply = await self.open_annotate("annotate")
        if reply is None:
            return False
        self.guided = reply
        return True

    async def maybe_auto_rerun(self) -> bool:
        if not self.auto_rerun or not self.jobs_fragment:
            return True
        if time.monotonic() - self.last_auto < AUTO_RERUN_EVERY:
            return True
        self.last_auto = time.monotonic()
        return await self.request("auto", "annotate", fragment=self.jobs_fragment,
                                  auto=True) is not None

    async def run(self, start_delay: float) -> None:
        await asyncio.sleep(start_delay)
        try:
            await self.connect()
        except Exception as error:  # noqa: BLE001
            self.failed = f"cannot connect: {type(error).__name__}: {error}"
            return
        try:
            if not await self.setup():
                return
            while time.monotonic() < self.deadline:
                await asyncio.sleep(self.rng.uniform(*self.think))
                if time.monotonic() >= self.deadline:
                    break
                if not await self.maybe_auto_rerun():
                    return
                if self.rng.random() < self.dashboard_share:
                    ok = await self.browse_dashboard()
                else:
                    ok = await self.label_one()
                if not ok:
                    return
        finally:
            self.close()


async def soak(url: str, args, server) -> tuple[list[User], dict]:
    images = sorted(Project.open(args.data_root / "projects" / "demo").images()["name"])
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    users = [User(k, url, images, tuple(args.think), args.dashboard, not args.no_auto_rerun,
                  t0, deadline, args.seed) for k in range(args.users)]
    samples = {"rss": [], "cpu": []}
    cpu_start = server.cpu_times() if server is not None else None

    async def sample() -> None:
        while time.monotonic() < deadline + REQUEST_TIMEOUT:
            if server is not None:
                try:
                    samples["rss"].append(server.memory_info().rss)
                except Exception:  # noqa: BLE001 - the server exited
                    return
            await asyncio.sleep(1.0)

    sampler = asyncio.ensure_future(sample())
    # Staggered starts over the first 2 s, as tabs opened by people at their desks.
    await asyncio.gather(*(u.run(2.0 * k / max(args.users, 1)) for k, u in enumerate(users)))
    wall = time.monotonic() - t0
    sampler.cancel()
    server_stats = {"wall_s": round(wall, 1)}
    if server is not None and cpu_start is not None:
        cpu_end = server.cpu_times()
        used = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
        rss = samples["rss"] or [server.memory_info().rss]
        server_stats.update(cpu_s=round(used, 1), cores_busy=round(used / wall, 2),
                            rss_start_mb=round(rss[0] / 2**20),
                            rss_max_mb=round(max(rss) / 2**20),
                            rss_end_mb=round(server.memory_info().rss / 2**20))
    return users, server_stats


# ---------------------------------------------------------------------------- checks


def check_store(project: Project, acked: list[tuple[str, str, int, str]],
                authors: set[str], objects: pd.DataFrame) -> dict:
    """Compare the acknowledged labels with the store.

    ``objects`` lists every ``(image, label)`` of the project; the history of each is read
    with :meth:`Project.history`. Each user labels one object per click, one click at a
    time, so its rows in the store, in id order, pair one to one with its acknowledged
    clicks: same image and class, and (unless someone else labelled the shown object between
    the page run and the click, in app versions before the guided buttons' callbacks) the
    same object.
    """
    rows = []
    for image, label in objects[["image", "label"]].itertuples(index=False):
        history = project.history(image, int(label))
        mine = history[history["author"].isin(authors)]
        rows += [(row_id, author, image, int(label), name) for row_id, author, name in
                 zip(mine["id"], mine["author"], mine["class"])]
    rows.sort()
    stored = collections.Counter((a, i, c) for _, a, i, _, c in rows)
    expected = collections.Counter((a, i, c) for a, i, _, c in acked)
    other_object = unpaired = 0  # clicks stored on another object; users not pairing
    for author in authors:
        clicks = [(i, lab, c) for a, i, lab, c in acked if a == author]
        written = [(i, lab, c) for _, a, i, lab, c in rows if a == author]
        if len(clicks) != len(written) or any(
                (x[0], x[2]) != (y[0], y[2]) for x, y in zip(clicks, written)):
            unpaired += 1
            continue
        other_object += sum(x[1] != y[1] for x, y in zip(clicks, written))
    current = project.labels()
    present = set(zip(current["image"], current["label"].astype(int)))
    written_objects = {(i, lab) for _, _, i, lab, _ in rows}
    return {
        "acknowledged": sum(expected.values()),
        "stored": len(rows),
        "lost": sum((expected - stored).values()),
        "not_acknowledged_but_stored": sum((stored - expected).values()),
        "users_whose_rows_do_not_pair_with_their_clicks": unpaired,
        "stored_on_another_object_than_shown": other_object,
        "objects_written": len(written_objects),
        "objects_missing_from_labels": len(written_objects - present),
    }


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    array = np.asarray(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(array, 50))),
            "p95_ms": round(float(np.percentile(array, 95))),
            "max_ms": round(float(array.max()))}


def summarise(users: list[User], args) -> dict:
    requests = [r for u in users for r in u.requests]
    served = [r for r in requests if r.latency is not None]
    measured = [r for r in served if r.kind not in ("load", "setup")]
    by_kind = {kind: quantiles([r.latency for r in served if r.kind == kind])
               for kind in ("load", "setup", "label", "auto", "dashboard", "annotate", "switch")}
    return {
        "requests_sent": len(requests),
        "requests_served": len(served),
        "script_runs": sum(r.script_runs for r in requests),
        "requests_per_s": round(len(measured) / args.seconds, 2),
        "latency_all_after_setup": quantiles([r.latency for r in measured]),
        "latency_by_kind": by_kind,
        "errors": sum(bool(r.error) for r in requests),
        "exceptions": sum(r.exceptions for r in requests),
        "error_messages": sorted({r.error for r in requests if r.error})[:10],
        "users_stopped_early": [f"soak-{u.k}: {u.failed}" for u in users if u.failed],
        "received_mb": round(sum(r.received for r in requests) / 2**20, 1),
        "media_mb": round(sum(r.media_bytes for r in requests) / 2**20, 1),
        "label_click_plus_media": quantiles([r.latency + r.media_seconds for r in served
                                             if r.kind == "label"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5, help=f"1..{MAX_USERS}")
    parser.add_argument("--seconds", type=float, default=120.0, help=f"10..{MAX_SECONDS}")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 1.0),
                        metavar=("MIN", "MAX"), help="think time after each action, seconds")
    parser.add_argument("--dashboard", type=float, default=0.1,
                        help="share of actions that open the Dashboard (0..1)")
    parser.add_argument("--no-auto-rerun", action="store_true",
                        help="do not rerun the sidebar's run_every fragment every 2 s")
    parser.add_argument("--size", type=int, default=768, help="side of the demo images")
    parser.add_argument("--objects", type=int, default=400, help="objects per demo image")
    parser.add_argument("--post-script-gc", choices=["config", "on", "off"], default="config",
                        help="runner.postScriptGC of the server: as .streamlit/config.toml "
                             "sets it (off), or forced; Streamlit's own default, on, runs "
                             "gc.collect(2) after every script run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write every request (default bench/out/soak_<users>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data root")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users must be 1..{MAX_USERS}, got {args.users}")
    if not 10 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be 10..{MAX_SECONDS}, got {args.seconds}")
    if not 0 <= args.think[0] <= args.think[1] <= 60:
        parser.error(f"--think must be 0 <= MIN <= MAX <= 60, got {args.think}")
    if not 0 <= args.dashboard <= 1:
        parser.error(f"--dashboard must be 0..1, got {args.dashboard}")
    args.json = args.json or ROOT / "bench" / "out" / f"soak_{args.users}.json"

    from tests.browser_server import app_server

    if args.post_script_gc != "config":
        # app_server passes this process's environment to the server; Streamlit reads
        # every config option from STREAMLIT_<SECTION>_<OPTION>.
        os.environ["STREAMLIT_RUNNER_POST_SCRIPT_GC"] = \
            "true" if args.post_script_gc == "on" else "false"
    args.data_root = Path(tempfile.mkdtemp(prefix="svetlana-soak-"))
    try:
        started = time.monotonic()
        project = make_project(args.data_root, args.size, args.objects, args.seed)
        print(f"demo project: 4 images {args.size}x{args.size}, {args.objects} objects each, "
              f"{len(project.labels())} pre-labelled ({time.monotonic() - started:.0f} s)")
        load_before = os.getloadavg()
        client_cpu = resource.getrusage(resource.RUSAGE_SELF)
        with app_server(args.data_root) as url:
            server = server_process()

            async def warm_up() -> float:
                user = User(-1, url, ["demo_A01.png"], (0, 0), 0, False, time.monotonic(),
                            time.monotonic(), 0)
                await user.connect()
                try:
                    start = time.monotonic()
                    await user.request("load", "annotate")
                    await user.request("load", "dashboard")
                    return time.monotonic() - start
                finally:
                    user.close()

            warm = asyncio.run(warm_up())
            print(f"warm-up (first Annotate + Dashboard runs of the server): {warm:.1f} s")
            users, server_stats = asyncio.run(soak(url, args, server))
        load_after = os.getloadavg()
        after = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu_s = (after.ru_utime - client_cpu.ru_utime) + (after.ru_stime -
                                                                  client_cpu.ru_stime)
        summary = summarise(users, args)
        acked = [a for u in users for a in u.acked]
        project = Project.open(args.data_root / "projects" / "demo")
        store = check_store(project, acked, {u.author for u in users},
                            pd.read_csv(project.folder / "ground_truth.csv"))
        result = {
            "command": " ".join(["python", "bench/soak.py", *(argv or sys.argv[1:])]),
            "users": args.users, "seconds": args.seconds, "think": list(args.think),
            "dashboard_share": args.dashboard, "auto_rerun": not args.no_auto_rerun,
            "post_script_gc": args.post_script_gc,
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
            "cpus": os.cpu_count(), "warm_up_s": round(warm, 2),
            "server": server_stats, "client_cpu_s": round(client_cpu_s, 1),
            **summary, "store": store,
            "requests": [asdict(r) for u in users for r in u.requests],
            "acknowledged": acked,
        }
        _print(result)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
        print(f"written {args.json}")
        bad = (store["lost"] or store["not_acknowledged_but_stored"]
               or store["objects_missing_from_labels"]
               or store["users_whose_rows_do_not_pair_with_their_clicks"]
               or store["stored_on_another_object_than_shown"]
               or summary["errors"] or summary["users_stopped_early"])
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"kept {args.data_root}")
        else:
            shutil.rmtree(args.data_root, ignore_errors=True)


def _print(result: dict) -> None:
    def fmt(q: dict) -> str:
        if not q.get("n"):
            return "none"
        return f"n {q['n']}, p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms, max {q['max_ms']} ms"

    print(f"users {result['users']}, {result['seconds']:.0f} s, think {result['think']} s, "
          f"dashboard share {result['dashboard_share']}, auto-rerun {result['auto_rerun']}, "
          f"post-script GC {result['post_script_gc']}")
    print(f"load average (1, 5, 15 min) before {tuple(result['load_before'])}, after "
          f"{tuple(result['load_after'])}, {result['cpus']} CPUs")
    print(f"requests: {result['requests_sent']} sent, {result['requests_served']} served "
          f"({result['requests_per_s']}/s after set-up), {result['script_runs']} "
          f"script_finished messages; "
          f"received {result['received_mb']} MB + media {result['media_mb']} MB")
    print("latency, every request after set-up: " + fmt(result["latency_all_after_setup"]))
    for kind, q in result["latency_by_kind"].items():
        print(f"  {kind:<10} {fmt(q)}")
    print("  label click + its image fetched: " + fmt(result["label_click_plus_media"]))
    print(f"errors: {result['errors']} requests ({result['exceptions']} exception elements)")
    for message in result["error_messages"]:
        print(f"  {message}")
    for line in result["users_stopped_early"]:
        print(f"  stopped early: {line}")
    s = result["store"]
    print(f"labels: {s['acknowledged']} acknowledged, {s['stored']} in the store (history "
          f"rows by the soak users), {s['lost']} lost, {s['not_acknowledged_but_stored']} "
          f"stored but not acknowledged; {s['objects_written']} objects written, "
          f"{s['objects_missing_from_labels']} of them missing from Project.labels(); "
          f"{s['stored_on_another_object_than_shown']} clicks labelled another object than "
          f"the one shown (someone labelled it first); "
          f"{s['users_whose_rows_do_not_pair_with_their_clicks']} users whose rows do not "
          f"pair with their clicks")
    server = result["server"]
    if "cpu_s" in server:
        print(f"server: {server['cpu_s']} s CPU in {server['wall_s']} s ({server['cores_busy']} "
              f"cores busy), RSS {server['rss_start_mb']} -> max {server['rss_max_mb']} MB; "
              f"client CPU {result['client_cpu_s']} s")


if __name__ == "__main__":
    sys.exit(main())
