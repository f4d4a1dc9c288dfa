"""Fixtures for the browser tests: a JupyterLab server and a Chromium page (see labdriver.py)."""
import json

import pytest

import labdriver


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: browser tests (JupyterLab in headless Chromium); deselect with -m 'not e2e'")


@pytest.fixture(scope="session")
def browser_requirements():
    """Skip when playwright or Chromium is missing here; in CI on Linux (CI=true) fail instead."""
    reason = labdriver.missing_requirements()
    if reason:
        if labdriver.ci_must_not_skip():
            pytest.fail(f"CI=true: browser tests must run, but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_server(browser_requirements, tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving a temporary copy of notebooks/; its log goes to artifacts/e2e/."""
    workdir = tmp_path_factory.mktemp("jupyterlab")
    labdriver.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in [*labdriver.ARTIFACTS.glob("*.png"), labdriver.ARTIFACTS / "latency.json"]:
        stale.unlink(missing_ok=True)  # this run's artefacts only
    log = labdriver.ARTIFACTS / "jupyter.log"
    log.unlink(missing_ok=True)
    with labdriver.JupyterLab(labdriver.REPO / "notebooks", workdir, log_path=log) as lab:
        yield lab


@pytest.fixture(scope="session")
def playwright(browser_requirements):
    """The session's one sync Playwright: a second one in the same process refuses to start ("Sync API inside
    the asyncio loop"), so every browser test launches from this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def chromium(playwright, tmp_path_factory):
    """(page, console) in headless system Chromium with a fresh --user-data-dir."""
    with labdriver.chromium_page(tmp_path_factory.mktemp("chromium-profile"), pw=playwright) as (page, console):
        yield page, console


@pytest.fixture(scope="session")
def e2e_report():
    """Numbers the tests measure; written to artifacts/e2e/latency.json at the end of the session."""
    report = {}
    yield report
    if report:
        labdriver.ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (labdriver.ARTIFACTS / "latency.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
