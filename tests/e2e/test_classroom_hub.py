"""The classroom server (classroom/jupyterhub_config.py) in headless Chromium: two learners, two homes.

Starts the real hub (JupyterHub + configurable-http-proxy from classroom/node_modules) on free
ports with its state in a temporary folder; ann and ben log in with their own passwords in two
separate browser contexts; each gets a server with their own copy of the learner notebooks,
opens 01_vae.ipynb and runs its first cells (imports, the digits); ann edits a cell and saves. Then: neither can
read the other's files through the other's server (contents API) or the hub's API, and on disk
each home is private (0700) and holds its own copy (ann's edit, ben's untouched build).
Timings (hub start-up, login + spawn, first cells) go to artifacts/e2e/latency.json ("classroom_hub").
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import labdriver

pytestmark = pytest.mark.e2e

REPO = labdriver.REPO
CLASSROOM = REPO / "classroom"
PROXY = CLASSROOM / "node_modules" / ".bin" / "configurable-http-proxy"
PASSWORDS = {"ann": "ann-secret-1", "ben": "ben-secret-2"}
LESSONS = ("00_welcome", "01_vae")
FIRST_CELLS = 5   # lesson 01: title, TRAIN flag, imports, a heading, load the digits (cells 0-4)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with code {proc.returncode}")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def hub(browser_requirements, tmp_path_factory, e2e_report):
    if not PROXY.exists():
        if labdriver.ci_must_not_skip():
            pytest.fail(f"CI=true: {PROXY} is missing (make setup runs `npm ci --prefix classroom`)")
        pytest.skip(f"{PROXY} is missing: run `npm ci --prefix classroom` (make hub does)")
    pytest.importorskip("jupyterhub")
    sys.path.insert(0, str(CLASSROOM))
    import classroom_hub

    from aigc_course.teaching.student import build_student

    state = tmp_path_factory.mktemp("classroom")
    build_student([REPO / "notebooks" / f"{name}.ipynb" for name in LESSONS], state / "learner_notebooks")
    for name, password in PASSWORDS.items():
        classroom_hub.add_user(state / "passwords", name, password)
    port, api_port, proxy_api = (labdriver._free_port() for _ in range(3))
    env = {**os.environ, "CLASSROOM_STATE": str(state), "HUB_PORT": str(port), "HUB_API_PORT": str(api_port),
           "PROXY_API_PORT": str(proxy_api), "PYTHONPATH": str(REPO), "AIGC_THREADS": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; the kernels must use the inline backend
    log_path = labdriver.ARTIFACTS / "classroom_hub.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                                 str(CLASSROOM / "jupyterhub_config.py")], cwd=state, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/hub/api/", proc, timeout=120)
        e2e_report.setdefault("classroom_hub", {})["hub_start_s"] = round(time.perf_counter() - start, 1)
        yield {"base": base, "state": state, "report": e2e_report["classroom_hub"]}
    finally:
        proc.send_signal(signal.SIGTERM)  # the hub stops the learners' servers (cleanup_servers) and the proxy
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left of its process group
        except (ProcessLookupError, PermissionError):
            pass


def _start_login(browser, base: str, name: str):
    """A fresh browser context (its own cookies) that submits ``name``'s log-in form; the spawn starts."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = labdriver.Console(page)
    page.goto(f"{base}/hub/login", wait_until="domcontentloaded")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORDS[name])
    page.click("#login_submit", no_wait_after=True)
    return context, page, console


def _start_first_cells(page, base: str, name: str, shots: Path):
    """Open lesson 01 and start its first cells (up to loading the digits): Run > Run All Above Selected Cell."""
    nb = labdriver.Notebook(page, labdriver.Console(page), shots)
    nb.open(f"{base}/user/{name}/lab/tree/01_vae.ipynb?reset")
    digits = page.locator(".jp-Notebook .jp-CodeCell").filter(has_text="load_digits(").first
    stale = digits.locator(".jp-OutputArea-output").first.element_handle()  # the build keeps the lesson's outputs
    page.locator(".jp-Notebook .jp-Cell").nth(FIRST_CELLS).locator(".jp-InputPrompt").click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='notebook:run-all-above']").first.click()
    return nb, digits, stale


def _first_cells_done(page, name: str, nb, digits, stale) -> None:
    try:
        page.wait_for_function("old => !old.isConnected", arg=stale, timeout=60_000)  # cleared: it runs
        digits.locator(".jp-OutputArea-output").filter(has_text="digits, image shape").first.wait_for(timeout=240_000)
        page.wait_for_function(labdriver.KERNEL_IDLE_JS, timeout=60_000)
    finally:
        nb.shot(f"classroom_{name}_01_vae")
    assert nb.error_outputs() == []


def test_two_learners_each_get_their_own_notebooks(hub, playwright):
    base, state, report = hub["base"], hub["state"], hub["report"]
    build = state / "learner_notebooks" / "01_vae.ipynb"
    started = time.perf_counter()
    # The session's Playwright (tests/e2e/conftest.py): only one may run per process.
    browser = playwright.chromium.launch(executable_path=labdriver.chromium_path(), args=labdriver.CHROMIUM_FLAGS,
                                         headless=True)
    try:
        # Both learners log in at once (as a class does); the hub spawns both servers side by side.
        t0 = time.perf_counter()
        sessions = {name: _start_login(browser, base, name) for name in PASSWORDS}
        for name, (_, page, _) in sessions.items():
            page.wait_for_url(f"{base}/user/{name}/lab**", timeout=180_000)  # spawn page -> their own JupyterLab
        report["two_logins_and_spawns_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        running = {name: _start_first_cells(page, base, name, labdriver.ARTIFACTS)
                   for name, (_, page, _) in sessions.items()}
        for name, (nb, digits, stale) in running.items():
            _first_cells_done(sessions[name][1], name, nb, digits, stale)
        report["two_learners_open_and_run_first_cells_s"] = round(time.perf_counter() - t0, 1)
        ann_page, ben_page = sessions["ann"][1], sessions["ben"][1]
        ann_page.locator(".jp-Notebook .jp-CodeCell .cm-content").first.click()  # ann edits, then saves
        ann_page.keyboard.press("Control+End")
        ann_page.keyboard.type("  # ann was here")
        ann_page.keyboard.press("Control+s")  # ben does not save
        saved = state / "homes" / "ann" / "01_vae.ipynb"
        deadline = time.monotonic() + 60
        while "ann was here" not in saved.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)

        # Through the servers' contents API: each sees their own files, never the other's.
        for name, page in (("ann", ann_page), ("ben", ben_page)):
            own = page.request.get(f"{base}/user/{name}/api/contents")
            assert own.status == 200, own.text()[:300]
            assert sorted(f["name"] for f in own.json()["content"]) == [f"{n}.ipynb" for n in LESSONS]
        for name, other, page in (("ann", "ben", ann_page), ("ben", "ann", ben_page)):
            theirs = page.request.get(f"{base}/user/{other}/api/contents/01_vae.ipynb", max_redirects=10)
            assert theirs.status == 403, (name, other, theirs.status, theirs.url)  # the other's server refuses
            assert '"cells"' not in theirs.text()
            hub_api = page.request.get(f"{base}/hub/api/users/{other}")
            assert hub_api.status == 404, (name, other, hub_api.status)  # "no access to resources or not found"
        for name, (_, _, console) in sessions.items():
            assert [e for e in console.errors() if "403" not in e and "404" not in e] == [], name
    finally:
        browser.close()
    report["two_learner_test_s"] = round(time.perf_counter() - started, 1)

    # On disk: two private homes, each with its own copy; ann's holds her edit, ben's is the build.
    homes = {name: state / "homes" / name for name in PASSWORDS}
    for home in homes.values():
        assert oct(home.stat().st_mode & 0o777) == "0o700"
        assert sorted(p.name for p in home.glob("*.ipynb")) == [f"{n}.ipynb" for n in LESSONS]
    ann_nb, ben_nb = homes["ann"] / "01_vae.ipynb", homes["ben"] / "01_vae.ipynb"
    assert ann_nb.stat().st_ino != ben_nb.stat().st_ino
    assert "ann was here" in ann_nb.read_text()
    assert ben_nb.read_bytes() == build.read_bytes()
    assert "raise NotImplementedError('Exercise 1.1" in ben_nb.read_text()  # learner version: no solutions
