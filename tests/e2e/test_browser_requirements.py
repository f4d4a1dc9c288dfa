"""The browser tests skip with a reason where they cannot run, and fail instead in CI (no browser needed here)."""
import sys

import pytest

import labdriver


@pytest.fixture
def no_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(labdriver, "CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.delenv("AIGC_E2E_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_chromium_gives_a_reason_with_the_fix(no_chromium):
    pytest.importorskip("playwright.sync_api", reason="without playwright that is the reason given instead")
    assert labdriver.chromium_path() is None
    reason = labdriver.missing_requirements()
    assert reason.startswith("no Chromium at") and "apt-get install chromium" in reason


def test_missing_playwright_gives_a_reason_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import now raises ImportError
    reason = labdriver.missing_requirements()
    assert "playwright" in reason and "never `playwright install`" in reason


@pytest.mark.parametrize("ci, platform, strict", [("true", "linux", True), ("True", "linux", True),
                                                   ("", "linux", False), ("1", "linux", False),
                                                   ("true", "darwin", False)])
def test_only_ci_on_linux_refuses_to_skip(monkeypatch, ci, platform, strict):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(sys, "platform", platform)
    assert labdriver.ci_must_not_skip() is strict


def test_chromium_override_is_used(monkeypatch, no_chromium, tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("AIGC_E2E_CHROMIUM", str(fake))
    assert labdriver.chromium_path() == str(fake)
