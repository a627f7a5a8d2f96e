"""Open a local HTML file in headless Chromium and tell what happened: the rendered DOM and
text, every console message, uncaught error and failed load, every URL the page asked
for, and a screenshot.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands
on its fd 3, answers and events on its fd 4, each a JSON text ending in NUL), so nothing
listens on a port and no package beyond Chromium itself is needed.  Unlike the console
lines that --enable-logging=stderr prints, the protocol's events carry each message's
level (log / warning / error), and failed loads (a missing picture, a blocked font) come
as their own entries, which the log lines lack.

    page = open_page(path, tmp_path)          # PageResult
    page.errors                               # [] when the page is clean

`require_chromium()` finds the browser; where it is missing a test skips, except under CI
(CI=true), where it fails: a browser test must not pass by not running.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a quiet, reproducible, offline-minded run: no first-run UI, no update or
# metrics traffic of the browser's own (so every request seen is the page's), no GPU.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
         "--hide-scrollbars", "--disable-dev-shm-usage", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    """The browser's path: $CHROMIUM if set, else the first of BROWSERS on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def require_chromium() -> str:
    """The browser's path; skip the test without one, fail it under CI."""
    path = find_chromium()
    if path is None:
        reason = ("headless Chromium is not installed (Debian/Ubuntu: apt-get install chromium; "
                  "`bash quickstart.sh setup` does it when run as root)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}; the browser tests cannot run", pytrace=False)
        pytest.skip(reason)
    return path


@dataclass
class ConsoleMessage:
    level: str  # "log", "info", "warning", "error", ...
    text: str
    source: str  # "console-api", "exception", "network", "javascript", ...
    url: str = ""

    def __str__(self) -> str:
        return f"[{self.level}/{self.source}] {self.text}" + (f" ({self.url})" if self.url else "")


@dataclass
class PageResult:
    url: str
    dom: str  # document.documentElement.outerHTML after the load
    text: str  # document.body.innerText: what a reader sees
    console: list[ConsoleMessage] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, in order
    screenshot: Path | None = None
    values: dict = field(default_factory=dict)  # open_page's `expressions`, evaluated in the page
    stderr: str = ""

    @property
    def errors(self) -> list[ConsoleMessage]:
        """Uncaught errors, console.error calls, failed loads and other error-level entries."""
        return [m for m in self.console if m.level == "error"]

    @property
    def external_requests(self) -> list[str]:
        """Requests that leave the page's own file: anything but file: and data: URLs."""
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]


class DevToolsError(RuntimeError):
    pass


class _Pipe:
    """The DevTools protocol over Chromium's fd 3 / fd 4."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float):
        self.write_fd, self.read_fd, self.deadline = write_fd, read_fd, deadline
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, until: float) -> dict | None:
        while b"\0" not in self.buffer:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise DevToolsError("Chromium did not answer in time")
                return None
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise DevToolsError("Chromium closed its DevTools pipe (it exited)")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer; events met on the way are kept."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.write_fd, data):]
        while True:
            reply = self._read_message(self.deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, timeout: float) -> bool:
        """Collect events until `method` arrives (True) or `timeout` seconds pass (False)."""
        until = time.monotonic() + timeout
        if any(e["method"] == method for e in self.events):
            return True
        while True:
            event = self._read_message(until)
            if event is None:
                return False
            if "method" in event:
                self.events.append(event)
                if event["method"] == method:
                    return True

    def drain(self, seconds: float) -> None:
        """Collect whatever events arrive in the next `seconds`."""
        until = time.monotonic() + seconds
        while (event := self._read_message(until)) is not None:
            if "method" in event:
                self.events.append(event)


def _remote_text(obj: dict) -> str:
    if "value" in obj:
        return obj["value"] if isinstance(obj["value"], str) else json.dumps(obj["value"])
    return obj.get("description") or obj.get("type", "")


def _console(events: list[dict]) -> list[ConsoleMessage]:
    out = []
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in events if e["method"] == "Network.requestWillBeSent"}
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled":
            level = {"warning": "warning", "error": "error", "assert": "error"}.get(p.get("type"), p.get("type"))
            text = " ".join(_remote_text(a) for a in p.get("args", []))
            frames = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            out.append(ConsoleMessage(level, text, "console-api", frames[0].get("url", "")))
        elif e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = (d.get("exception") or {}).get("description") or d.get("text", "exception")
            out.append(ConsoleMessage("error", text, "exception", d.get("url", "")))
        elif e["method"] == "Log.entryAdded":
            entry = p.get("entry", {})
            out.append(ConsoleMessage(entry.get("level", "info"), entry.get("text", ""), entry.get("source", "other"),
                                      entry.get("url", "")))
        elif e["method"] == "Network.loadingFailed" and not p.get("canceled"):
            out.append(ConsoleMessage("error", f"failed to load: {p.get('errorText', '')}", "network-failed",
                                      urls.get(p.get("requestId"), "")))
    return out


def open_page(path: str | Path, out_dir: str | Path, *, width: int = 1280, height: int = 900,
              timeout: float = 60.0, settle: float = 0.5, expressions: dict[str, str] | None = None) -> PageResult:
    """Load `path` (a local HTML file) in headless Chromium; return what it rendered and logged.

    The screenshot (the viewport, width x height pixels, of the page's top) goes to
    out_dir/<name>.png; Chromium's profile and its stderr log go under out_dir too.
    `settle`: seconds to keep listening after the load event for late messages.
    `expressions`: {name: JavaScript expression}, evaluated after the load (PageResult.values).
    """
    chromium = require_chromium()
    path, out = Path(path).resolve(), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    url = path.as_uri()
    profile = out / f"chromium-profile-{path.stem}"
    log_path = out / f"chromium-{path.stem}.log"
    shot = out / f"{path.stem}.png"
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # The browser's ends moved above 9, so that they cannot be 3 or 4 themselves.
    to_chrome_r, from_chrome_w = (_above_9(fd) for fd in (to_chrome_r, from_chrome_w))
    # Chromium reads commands from its fd 3 and writes to its fd 4: the shell puts the pipe
    # ends there, then becomes the browser.
    wrapper = f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
    cmd = ["bash", "-c", wrapper, "chromium", chromium, *FLAGS, f"--user-data-dir={profile}",
           f"--window-size={width},{height}", "--enable-logging=stderr", "--v=0", "about:blank"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=(to_chrome_r, from_chrome_w), start_new_session=True)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r, time.monotonic() + timeout)
    try:
        page = _load(pipe, url, shot, width, height, timeout, settle, expressions or {})
    except DevToolsError as exc:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise DevToolsError(f"{exc}\nChromium's log ({log_path}) ends:\n{tail}") from None
    finally:
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the browser's own process group (start_new_session)
            proc.wait()
    page.stderr = log_path.read_text(errors="replace")
    return page


def _load(pipe: _Pipe, url: str, shot: Path, width: int, height: int, timeout: float, settle: float,
          expressions: dict[str, str]) -> PageResult:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
    pipe.events.clear()  # from here on, only the page's own
    nav = pipe.send("Page.navigate", {"url": url}, session=session)
    if nav.get("errorText"):
        raise DevToolsError(f"cannot open {url}: {nav['errorText']}")
    if not pipe.wait_for("Page.loadEventFired", timeout):
        raise DevToolsError(f"{url} did not finish loading in {timeout} s")
    pipe.drain(settle)

    def evaluate(expr: str):
        reply = pipe.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)
        if "exceptionDetails" in reply:
            raise DevToolsError(f"{expr}: {reply['exceptionDetails'].get('text')} "
                                f"{reply['result'].get('description', '')}")
        return reply["result"].get("value")

    dom = evaluate("document.documentElement.outerHTML")
    text = evaluate("document.body ? document.body.innerText : ''")
    values = {name: evaluate(expr) for name, expr in expressions.items()}
    png = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    shot.write_bytes(base64.b64decode(png))
    pipe.drain(0.1)
    events = list(pipe.events)
    try:
        pipe.send("Browser.close")
    except DevToolsError:
        pass  # it went away while answering
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    return PageResult(url=url, dom=dom, text=text, console=_console(events), requests=requests, screenshot=shot,
                      values=values)


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def png_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
