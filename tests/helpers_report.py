"""What the report tests of both tasks share (tests/test_report.py, tests/test_report_regression.py): the page
rendered by a real headless Chromium, cut into its sections."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

#: an embedded PNG plot of a real size
PLOT = re.compile(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{200,}')


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


needs_chromium = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def rendered_sections(report: Any, tmp_path: Path, sids: Iterable[str]) -> tuple[str, dict[str, str]]:
    """The DOM of ``report``'s page after headless Chromium ran it, and the inner HTML of each section in ``sids``
    (each one present and rendered without error)."""
    page = report.save(tmp_path / "report.html")
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert done.returncode == 0 and "<main>" in dom, done.stderr[-2000:]
    sections = {}
    for sid in sids:
        section = re.search(rf'<section id="{sid}">(.*?)</section>', dom, re.S)
        assert section, f"section {sid} missing from the rendered DOM"
        assert "Could not render" not in section.group(1)
        sections[sid] = section.group(1)
    return dom, sections
