"""Drive a real JupyterLab in headless Chromium: shared by ``tests/e2e`` and ``scripts/screenshots.py``.

Three pieces, each usable on its own:

* :func:`missing_requirements` says why a browser test cannot run here (no
  ``playwright`` package, no Chromium), so callers can skip (or, in CI, fail).
* :class:`JupyterLab` starts ``jupyter lab`` from this Python environment on
  127.0.0.1, a free port and a random token, serving a *copy* of the notebooks
  in a temporary folder (the repository's notebooks are never saved over), with
  its own config/data/runtime folders and the "Jupyter news?" prompt pre-answered.
* :func:`chromium_page` opens the system Chromium (never ``playwright install``:
  it downloads) with a fresh profile; :class:`Notebook` does what a learner does
  in it: open a notebook, Run All, move sliders, and measures key-press-to-image latency.

Nothing here touches the network beyond 127.0.0.1, so it runs inside ``scripts/offline``.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("AIGC_E2E_ARTIFACTS") or REPO / "artifacts" / "e2e")
CHROMIUM = "/usr/bin/chromium"  # Debian/Ubuntu package `chromium`; override with $AIGC_E2E_CHROMIUM
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--no-proxy-server"]
INSTALL_HINT = ("install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`, or run scripts/ensure_chromium) "
                "or point $AIGC_E2E_CHROMIUM at a Chromium/Chrome binary")
# A 2-core machine needs ~35-50 s for Run All of 01_vae; leave plenty of head-room.
SERVER_START_S = 120
OPEN_S = 120
RUN_ALL_S = float(os.environ.get("AIGC_E2E_RUN_ALL_TIMEOUT", 600))
MOVE_S = 15  # one slider key press -> image update


def chromium_path() -> str | None:
    """The Chromium binary to drive: $AIGC_E2E_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH."""
    for candidate in (os.environ.get("AIGC_E2E_CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_requirements() -> str | None:
    """Why a browser test cannot run on this machine, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("the `playwright` package is not installed in this environment: "
                "`.venv/bin/pip install -c requirements/lock.txt playwright` (never `playwright install`)")
    if chromium_path() is None:
        return f"no Chromium at {CHROMIUM}: {INSTALL_HINT}"
    return None


def ci_must_not_skip() -> bool:
    """In CI on Linux (CI=true) a missing browser is an error, not a skip."""
    return os.environ.get("CI", "").lower() == "true" and sys.platform.startswith("linux")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving a private copy of ``notebooks``.

    ``with JupyterLab(REPO / "notebooks", workdir) as lab: page.goto(lab.url("01_vae.ipynb"))``.
    ``workdir`` (created if needed) holds the notebook copy (``workdir/notebooks``),
    Jupyter's config/data/runtime folders and the server log (``workdir/jupyter.log``).
    """

    def __init__(self, notebooks: Path, workdir: Path, log_path: Path | None = None, locale: str | None = None):
        self.source, self.workdir = Path(notebooks), Path(workdir)
        self.locale = locale  # e.g. "zh_CN": the interface language (its language pack must be installed)
        self.root = self.workdir / "notebooks"
        self.log_path = Path(log_path) if log_path else self.workdir / "jupyter.log"
        self.token = secrets.token_hex(16)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str) -> str:
        """URL that opens ``notebook`` in a fresh workspace (``reset``: no tabs restored)."""
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"

    def _prepare(self) -> dict:
        shutil.copytree(self.source, self.root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        env = dict(os.environ)
        for name in ("config", "data", "runtime", "ipython"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        env.update(JUPYTER_CONFIG_DIR=str(self.workdir / "config"), JUPYTER_DATA_DIR=str(self.workdir / "data"),
                   JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"), IPYTHONDIR=str(self.workdir / "ipython"),
                   JUPYTER_PLATFORM_DIRS="1",
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
        env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; the kernel must use the inline backend
        env.pop("JUPYTER_PREFER_ENV_PATH", None)
        # Pre-answer "Would you like to get notified about official Jupyter news?" (a toast over the notebook).
        settings = self.workdir / "config" / "lab" / "user-settings"
        notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        if self.locale:  # what `make lab-zh` writes
            language = settings / "@jupyterlab" / "translation-extension" / "plugin.jupyterlab-settings"
            language.parent.mkdir(parents=True, exist_ok=True)
            language.write_text(json.dumps({"locale": self.locale}))
        self.settings_dir = settings
        # As `make setup` does for the venv: RISE's slideshow page (jupyterlab-rise 0.43.1, built against
        # JupyterLab 4.3) loads none of the lab's extensions, which fail there with console errors.
        rise = self.workdir / "config" / "jupyter_rise_config.json"
        rise.write_text(json.dumps({"RiseApp": {"labextensions_path": [], "extra_labextensions_path": []}}))
        return env

    def rise_url(self, notebook: str) -> str:
        """URL of ``notebook`` as a RISE slideshow (the page JupyterLab's View > Render with RISE embeds)."""
        return f"{self.base}/rise/{notebook}?token={self.token}"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
                "--ServerApp.terminals_enabled=False",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                f"--LabApp.user_settings_dir={self.settings_dir}",
                f"--LabApp.workspaces_dir={self.workdir / 'workspaces'}"]

    def start(self, timeout: float = SERVER_START_S) -> "JupyterLab":
        env = self._prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # the free port may be taken between probing and binding
            self.port = _free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self._command(), cwd=self.root, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)  # its own process group: kernels included
            log.close()
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"JupyterLab did not answer {self.base}/api/status within {timeout:.0f} s; "
                           f"log: {self.log_path}\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        request = urllib.request.Request(f"{self.base}/api/status", headers={"Authorization": f"token {self.token}"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                with opener.open(request, timeout=5) as response:
                    if response.status == 200:
                        return True
            time.sleep(0.5)
        return False

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL the whole process group."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # a kernel left behind, if any

    def __enter__(self) -> "JupyterLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def fontconfig_file(folder: Path) -> Path | None:
    """A fontconfig file that adds the course's CJK font (PyPI noto-cjk-sans-otc) to the system fonts.

    Without it a machine with no CJK font draws 汉字 as empty boxes; with it Chromium finds
    Noto Sans CJK SC the way matplotlib does, with no root and no system package.
    """
    try:
        from aigc_course.core.i18n import cjk_font_file
    except ImportError:
        return None
    font = cjk_font_file()
    if font is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{font.parent}</dir>\n  <cachedir>{folder / 'fontconfig-cache'}</cachedir>\n</fontconfig>\n")
    return conf


@contextlib.contextmanager
def chromium_page(user_data_dir: Path, width: int = 1400, height: int = 1000, scale: float = 1, *, pw=None):
    """A page in headless system Chromium with a fresh profile in ``user_data_dir``; yields (page, console).

    ``pw`` is a running Playwright (``sync_playwright().start()``) to launch from; without one, the page gets its
    own. Only one sync Playwright may run in a process, so tests share the session's (conftest ``playwright``)."""
    from playwright.sync_api import sync_playwright

    env = dict(os.environ)
    fonts = fontconfig_file(Path(user_data_dir))
    if fonts:
        env["FONTCONFIG_FILE"] = str(fonts)
    with (contextlib.nullcontext(pw) if pw is not None else sync_playwright()) as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": width, "height": height}, device_scale_factor=scale, env=env)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            console = Console(page)
            yield page, console
        finally:
            context.close()


@dataclass
class Console:
    """Every browser console message and uncaught page error, from the moment the page is created."""

    page: object
    messages: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)

    def __post_init__(self):
        self.page.on("console", lambda m: self.messages.append(
            {"type": m.type, "text": m.text[:1000], "url": (m.location or {}).get("url", "")}))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)[:1000]))

    def errors(self) -> list[str]:
        return ([f"console.error: {m['text']} ({m['url']})" for m in self.messages if m["type"] == "error"]
                + [f"page error: {e}" for e in self.page_errors])


# --- JavaScript run in the page ---------------------------------------------------------------

NOTEBOOK_STATE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
      .map(p => p.textContent.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {cells: prompts.length, busy: prompts.filter(p => p.includes('*')).length,
          done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length,
          kernel: ind ? ind.getAttribute('data-status') : null};
}"""

KERNEL_IDLE_JS = """() => { const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return !!i && i.getAttribute('data-status') === 'idle'; }"""

# Time of the latest key press / pointer press, recorded in the capture phase (before the slider sees it).
INPUT_CLOCK_JS = """(() => {
  window.__e2e = {lastInput: 0, events: []};
  for (const ev of ['keydown', 'pointerdown'])
    document.addEventListener(ev, () => { window.__e2e.lastInput = performance.now(); }, true);
})()"""

# A MutationObserver on the <img>'s src (the DOM update) plus its load event (decoded, painted next frame).
TRACK_IMG_JS = """([tag, img]) => {
  img.dataset.e2e = tag;
  const rec = (kind) => window.__e2e.events.push({tag, kind, t: performance.now(), src: img.src});
  new MutationObserver(() => rec('src')).observe(img, {attributes: true, attributeFilter: ['src']});
  img.addEventListener('load', () => rec('load'));
}"""


# The box around what an element actually shows: its text, images and slider tracks, plus a margin.
CONTENT_BOX_JS = """e => {
  const rects = [];
  const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (!walker.currentNode.textContent.trim()) continue;
    const r = document.createRange(); r.selectNodeContents(walker.currentNode); rects.push(r.getBoundingClientRect());
  }
  for (const el of e.querySelectorAll('img, canvas, .noUi-target, .noUi-handle')) rects.push(el.getBoundingClientRect());
  const box = e.getBoundingClientRect(), seen = rects.filter(r => r.width > 0 && r.height > 0);
  if (!seen.length) return {x: box.left, y: box.top, width: box.width, height: box.height};
  const pad = 8;
  const x0 = Math.max(box.left, Math.min(...seen.map(r => r.left)) - pad);
  const y0 = Math.max(box.top, Math.min(...seen.map(r => r.top)) - pad);
  const x1 = Math.min(box.right, Math.max(...seen.map(r => r.right)) + pad);
  const y1 = Math.min(box.bottom, Math.max(...seen.map(r => r.bottom)) + pad);
  return {x: x0, y: y0, width: x1 - x0, height: y1 - y0};
}"""


def readout_value(slider) -> float:
    """The number a FloatSlider shows next to it (ipywidgets writes minus as U+2212)."""
    return float(slider.locator(".widget-readout").inner_text().strip().replace("\u2212", "-"))


class Notebook:
    """One notebook open in JupyterLab, driven the way a learner would drive it."""

    def __init__(self, page, console: Console, shots: Path = ARTIFACTS):
        self.page, self.console, self.shots = page, console, Path(shots)
        self.shots.mkdir(parents=True, exist_ok=True)
        page.add_init_script(INPUT_CLOCK_JS)

    def open(self, url: str, timeout: float = OPEN_S) -> None:
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=timeout * 1000)
        self.page.wait_for_function(KERNEL_IDLE_JS, timeout=timeout * 1000)
        self.page.wait_for_timeout(2000)  # late toasts / dialogs get their chance to appear

    def shot(self, name: str, element=None) -> Path:
        """Save ``name``.png: the viewport, or ``element`` cropped to what it shows (widget boxes are
        as wide as the notebook; the empty right-hand part is cut off)."""
        path = self.shots / f"{name}.png"
        if element is None:
            self.page.screenshot(path=str(path))
        else:
            self.page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring
            self.page.mouse.move(0, 0)  # no hover highlight
            self.page.wait_for_timeout(200)
            self.page.screenshot(path=str(path), clip=element.evaluate(CONTENT_BOX_JS))
        return path

    def dialogs(self) -> list[str]:
        """Text of every modal dialog on screen (none should block the notebook)."""
        return [d.replace("\n", " | ")[:300] for d in self.page.locator(".jp-Dialog").all_inner_texts()]

    def toasts(self) -> list[str]:
        return [t.replace("\n", " | ")[:300] for t in self.page.locator(".Toastify__toast").all_inner_texts()]

    def cell(self, text: str):
        """The (last) cell whose source contains ``text``."""
        return self.page.locator(".jp-Notebook .jp-Cell").filter(has_text=text).last

    def run_all(self, timeout: float = RUN_ALL_S) -> float:
        """Run > Run All Cells from the menu bar; wait until every code cell ran and the kernel is idle."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").first.click()
        start = time.monotonic()
        calm = 0
        while calm < 2:  # two polls in a row: all cells numbered, none queued, kernel idle
            state = self.page.evaluate(NOTEBOOK_STATE_JS)
            done = state["cells"] and state["done"] == state["cells"] and not state["busy"]
            calm = calm + 1 if done and state["kernel"] == "idle" else 0
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"Run All did not finish in {timeout:.0f} s: {state}")
            self.page.wait_for_timeout(500)
        return time.monotonic() - start

    def error_outputs(self) -> list[str]:
        """Tracebacks / error text in any output area."""
        texts = self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        return [t[:500] for t in texts.all_inner_texts() if "Traceback" in t or "Error" in t]

    def slider(self, label: str, within=None):
        """The ipywidgets slider whose description is exactly ``label``."""
        return (within or self.page).locator(f".widget-slider:has(label:text-is('{label}'))").last

    def output_with(self, label: str):
        """The output area holding the slider ``label`` (the whole explorer view)."""
        return self.page.locator(".jp-OutputArea-output").filter(has=self.slider(label)).last

    def scroll_to(self, locator) -> None:
        """Bring ``locator`` to the middle of the notebook. Twice: cells rendered on the way
        (content-visibility) change their height and push the target."""
        for _ in range(3):
            locator.evaluate("e => e.scrollIntoView({block: 'center'})")
            self.page.wait_for_timeout(400)

    def widget_with(self, label: str):
        """The outermost widget box holding the slider ``label`` (what a README screenshot shows)."""
        return self.output_with(label).locator(".jupyter-widgets.widget-vbox").first

    def track(self, tag: str, img) -> None:
        self.page.evaluate(TRACK_IMG_JS, [tag, img.element_handle()])

    def press(self, slider, key: str, tag: str, until=None, timeout: float = MOVE_S) -> dict:
        """Focus ``slider``'s handle, press ``key`` once, wait for a new src on the tracked image ``tag``
        (and for the JS predicate ``until``, if given). Returns the latencies in milliseconds."""
        handle = slider.locator(".noUi-handle").first
        if not self.page.evaluate("h => document.activeElement === h", handle.element_handle()):
            handle.focus()
        self.page.evaluate("() => { window.__e2e.events = []; }")
        before = self.page.evaluate(f"() => document.querySelector('img[data-e2e={tag}]').src")
        self.page.keyboard.press(key)
        self.page.wait_for_function(
            f"() => window.__e2e.events.some(e => e.tag === '{tag}' && e.kind === 'load')", timeout=timeout * 1000)
        if until:
            self.page.wait_for_function(until, timeout=timeout * 1000)
        state = self.page.evaluate("() => window.__e2e")
        events = [e for e in state["events"] if e["tag"] == tag]
        src = next(e["t"] for e in events if e["kind"] == "src")
        load = next(e["t"] for e in events if e["kind"] == "load")
        return {"src_ms": src - state["lastInput"], "load_ms": load - state["lastInput"],
                "changed": events[-1]["src"] != before}


def record_latency(report: dict, explorer: str, control: str, moves: list[dict], what: str,
                   in_seconds: bool = False) -> None:
    """Store ``summarise(moves)`` as report[explorer][control] and print its median press -> new src."""
    report[explorer] = {control: summarise(moves)}
    median = report[explorer][control]["press_to_src_ms"]["median"]
    shown = f"{median / 1000:.1f} s" if in_seconds else f"{median} ms"
    print(f"\n{what}: median {shown} (n={len(moves)})")


def summarise(moves: list[dict]) -> dict:
    """Median / min / max of key-press -> new image src (DOM) and -> image loaded, in ms."""
    src = [m["src_ms"] for m in moves]
    load = [m["load_ms"] for m in moves]
    return {"moves": len(moves),
            "press_to_src_ms": {"median": round(statistics.median(src), 1), "min": round(min(src), 1),
                                "max": round(max(src), 1)},
            "press_to_load_ms": {"median": round(statistics.median(load), 1), "max": round(max(load), 1)},
            "all_press_to_src_ms": [round(x, 1) for x in src]}
