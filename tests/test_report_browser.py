"""Render the HTML report in headless Chromium: screenshot and DOM after parsing.

Skipped when no ``chromium`` executable is on PATH. Chromium runs with network
services off and every host name mapped to "not found", so the page can only
render from the local file.
"""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyakcheck.report import problem_figures, write_report

CHROMIUM = shutil.which("chromium")
TIMEOUT_SECONDS = 60
WINDOW = (1400, 4000)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (no 'chromium' on PATH)"
)


def _load_report_tests():
    # Load the builders of the synthetic Verification from test_report.py by path,
    # so this works under every pytest import mode.
    path = Path(__file__).with_name("test_report.py")
    spec = importlib.util.spec_from_file_location("report_test_builders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chromium(profile, *arguments):
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *arguments,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Write a report of two problems and render it: (screenshot, DOM, figure count)."""
    builders = _load_report_tests()
    directory = tmp_path_factory.mktemp("browser")
    verifications = [
        builders.synthetic_verification("toy least squares"),
        builders.synthetic_verification("second problem"),
    ]
    html_path, _ = write_report(
        verifications, directory / "report.html", directory / "report.json",
        builders.fake_provenance(),
    )
    figure_count = sum(
        len(problem_figures(v, prefix=f"p{i}")) for i, v in enumerate(verifications)
    )
    url = html_path.resolve().as_uri()
    screenshot = directory / "screenshot.png"
    shot = _chromium(directory / "profile-shot", f"--screenshot={screenshot}", url)
    assert screenshot.is_file(), f"no screenshot; stderr:\n{shot.stderr[-2000:]}"
    dump = _chromium(directory / "profile-dom", "--dump-dom", url)
    assert dump.returncode == 0, f"--dump-dom failed:\n{dump.stderr[-2000:]}"
    return screenshot, dump.stdout, figure_count


def test_screenshot_size(rendered):
    screenshot, _, _ = rendered
    assert screenshot.stat().st_size > 50_000
    with Image.open(screenshot) as image:
        assert image.size == WINDOW


def test_screenshot_not_one_colour(rendered):
    screenshot, _, _ = rendered
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB"))
    packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    assert np.unique(packed).size > 50
    assert pixels.std() > 10


def test_screenshot_has_status_colours(rendered):
    screenshot, _, _ = rendered
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    # Background colours of the "violated" and "holds" cells in the template's CSS.
    for name, rgb in (("violated", (0xFF, 0xE1, 0xDE)), ("holds", (0xDA, 0xFB, 0xE1))):
        count = int(np.all(pixels == rgb, axis=1).sum())
        assert count > 100, f"{name} colour {rgb} covers only {count} pixels"


def test_dom_has_verdict_table(rendered):
    _, dom, _ = rendered
    assert 'id="verdict-table"' in dom
    assert dom.count('class="verdict-table"') == 2
    for statement in ("S1", "S2", "S3", "I3", "I2"):
        assert f"<td><b>{statement}</b></td>" in dom


def test_dom_has_svg_figures(rendered):
    _, dom, figure_count = rendered
    svg_count = len(re.findall(r"<svg\b", dom))
    assert figure_count == 8
    assert svg_count >= figure_count
    assert dom.count("<figure ") == figure_count
