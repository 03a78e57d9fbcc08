"""The course website (`make site`: docs/ -> docs/_build/html) opened in a real browser.

The site is built once per session (Sphinx executes every tutorial in fast mode; executions are
cached under docs/_build/.jupyter_cache, keyed on the library's sources, so a rebuild after
`make site` is quick), served on 127.0.0.1, and every page is opened in headless Chromium,
driven over the DevTools protocol by the small client below. Each page must log no JavaScript
error and load nothing from outside the site; where it has math, MathJax must have typeset all
of it; each tutorial page must show its figures (every image loaded, with a natural size). A
screenshot of each page is saved under docs/_build/screenshots/.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
SCREENSHOTS = DOCS / "_build" / "screenshots"
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="the site's browser test needs Chromium, which "
                       "is not installed (Debian: apt-get install chromium; .ci/run installs it)"),
]
websocket = pytest.importorskip("websocket", reason="the site's browser test needs "
                                "websocket-client: pip install -e '.[docs]'")
pytest.importorskip("sphinx", reason="building the site needs the docs extra: "
                    "pip install -e '.[docs]'")


class Browser:
    """Headless Chromium and one tab, driven over the DevTools protocol (JSON over a
    websocket: commands with ids, answered by id; events in between, kept for reading)."""

    def __init__(self, user_data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage",   # a container's small /dev/shm would crash it
             "--disable-extensions", "--remote-debugging-port=0", "--window-size=1280,900",
             f"--user-data-dir={user_data_dir}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{CHROMIUM} did not start its DevTools server")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            tab = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def errors_in(events: list[dict]) -> list[str]:
    """The JavaScript errors among a page's DevTools events: uncaught exceptions,
    console.error calls and error-level log entries (a resource that failed to load)."""
    found = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            found.append(" ".join(str(a.get("value", a.get("description")))
                                  for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
    return found


# Every image on the page, loaded eagerly; then MathJax's typesetting, if the page loads it.
PAGE_STATE = """(async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const text = document.querySelector("article") || document.body;
  const prose = text.cloneNode(true);
  prose.querySelectorAll("pre, code, .highlight, mjx-container, script")
       .forEach(node => node.remove());
  return {
    images: images.map(img => ({src: img.getAttribute("src"), width: img.naturalWidth,
                                complete: img.complete})),
    math: document.querySelectorAll(".math").length,
    untypeset: [...document.querySelectorAll(".math")]
                 .filter(node => !node.querySelector("mjx-container"))
                 .map(node => node.textContent.slice(0, 80)),
    typeset: document.querySelectorAll("mjx-container").length,
    texErrors: [...document.querySelectorAll("mjx-merror")]
                 .map(node => node.getAttribute("data-mjx-error")),
    raw: ["$$", "\\\\(", "\\\\["].filter(mark => prose.textContent.includes(mark)),
  };
})()"""


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site: `make site`'s command, into a fresh output folder (no page of an earlier
    build is left over), reusing the parsed sources of an earlier build where unchanged."""
    shutil.rmtree(HTML, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going",
                           "-q", "-d", str(DOCS / "_build" / "doctrees"), str(DOCS), str(HTML)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return HTML


@pytest.fixture(scope="session")
def server(site: Path):
    """The site served over HTTP on the loopback address, as a reader's browser would get it."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture(scope="session")
def pages(server: str, site: Path) -> dict[str, dict]:
    """Every page of the site, opened in Chromium: its state, its errors, the URLs it asked
    for; a screenshot of each under docs/_build/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    found = {}
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(Path(profile))
        try:
            for path in sorted(site.rglob("*.html")):
                name = path.relative_to(site).as_posix()
                browser.events.clear()
                browser.send("Page.navigate", url=f"{server}/{name}")
                browser.wait_for("Page.loadEventFired")
                state = browser.evaluate(PAGE_STATE)
                shot = browser.send("Page.captureScreenshot", format="png")
                (SCREENSHOTS / (name.replace("/", "__")[:-5] + ".png")).write_bytes(
                    base64.b64decode(shot["data"]))
                state["errors"] = errors_in(browser.events)
                state["requests"] = [e["params"]["request"]["url"] for e in browser.events
                                     if e.get("method") == "Network.requestWillBeSent"]
                found[name] = state
        finally:
            browser.close()
    return found


def test_the_site_has_every_tutorial_the_api_the_benchmarks_and_the_derive_table(pages, site):
    index = (site / "index.html").read_text()
    for script in TUTORIALS:
        assert f"tutorials/{script.stem}.html" in pages, script.name
        assert f'href="tutorials/{script.stem}.html"' in index, f"{script.name}: not in the index"
    assert "index.html" in pages and "api.html" in pages
    assert "_generated/benchmarks.html" in pages and "_generated/derive.html" in pages
    assert any(name.startswith("generated/minigrad.ops") for name in pages)


def test_no_page_logs_a_javascript_error(pages):
    assert {name: p["errors"] for name, p in pages.items() if p["errors"]} == {}


def test_no_page_loads_anything_from_outside_the_site(pages, server):
    outside = {name: [u for u in p["requests"] if not u.startswith((server, "data:", "blob:"))]
               for name, p in pages.items()}
    assert {name: urls for name, urls in outside.items() if urls} == {}


def test_every_tutorial_page_shows_its_figures(pages):
    """As many images as the figures the tutorial names (figures/NN_*.png), each loaded."""
    for script in TUTORIALS:
        page = pages[f"tutorials/{script.stem}.html"]
        figures = set(re.findall(rf"{script.name[:2]}_[a-z0-9_]+\.png", script.read_text()))
        assert len(page["images"]) >= max(1, len(figures)), f"{script.name}: shows " \
            f"{len(page['images'])} images for its figures {sorted(figures)}"
        broken = [i["src"] for i in page["images"] if not (i["complete"] and i["width"] > 0)]
        assert broken == [], f"{script.name}: figures that did not load: {broken}"


def test_every_image_on_the_site_loads(pages):
    broken = {name: [i["src"] for i in p["images"] if not (i["complete"] and i["width"] > 0)]
              for name, p in pages.items()}
    assert {name: srcs for name, srcs in broken.items() if srcs} == {}


def test_math_is_typeset_by_the_local_mathjax(pages, server):
    with_math = {name: p for name, p in pages.items() if p["math"]}
    for script in TUTORIALS[:4]:            # tutorials 1-4 derive things: they have math
        assert f"tutorials/{script.stem}.html" in with_math, script.name
    assert "generated/minigrad.ops.elementwise.html" in with_math   # the ops' formulas
    for name, page in with_math.items():
        assert page["untypeset"] == [], f"{name}: math left as TeX"
        assert page["texErrors"] == [], f"{name}: TeX that MathJax could not read"
        assert page["typeset"] >= page["math"], name
        mathjax = [u for u in page["requests"] if "mathjax" in u.lower()]
        assert mathjax and all(u.startswith(server) for u in mathjax), name
    for name, page in pages.items():
        assert page["raw"] == [], f"{name}: raw TeX delimiters {page['raw']} in its text"


def test_a_screenshot_of_every_page(pages):
    for name in pages:
        shot = SCREENSHOTS / (name.replace("/", "__")[:-5] + ".png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_the_built_html_names_no_cdn(site):
    for path in site.rglob("*.html"):
        text = path.read_text()
        for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis", "mathjax.org"):
            assert cdn not in text, f"{path.name} refers to {cdn}"
