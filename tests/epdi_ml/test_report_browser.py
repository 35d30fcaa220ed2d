"""The campaign report in headless Chromium: every image loads, no table is wider than the page.

The page is copied beside its figures with a script that, on window load, writes its checks as JSON
into ``<pre id="check">``; Chromium prints the DOM after the load (``--dump-dom``) and draws a
screenshot of the same window (``--screenshot``). A copy of the screenshot goes to
``$EPDI_REPORT_SCREENSHOT`` when set. Skipped, with the reason, where no Chromium binary is found
(Debian: ``apt-get install chromium``; ``.ci/run`` installs it when it runs as root).
"""

import html
import json
import os
import re
import shutil
import subprocess

import pytest
from PIL import Image
from store_helpers import module_campaign_store

from epdi_ml.report.build import build_report
from stores.facade import StoreFacade
from stores.settings import get_settings

#: window of the check (px): the width the report must fit
WIDTH, HEIGHT = 1400, 1000

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)"
)

#: run on window load: images loaded, tables' right edges, the page's width; JSON into <pre id="check">
CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const images = [...document.images].map((img) => ({
    src: img.getAttribute("src"), complete: img.complete, naturalWidth: img.naturalWidth }));
  const tables = [...document.querySelectorAll("table")].map((t) => ({
    right: t.getBoundingClientRect().right, head: t.rows[0].cells[0].textContent }));
  const pre = document.createElement("pre");
  pre.id = "check";
  pre.textContent = JSON.stringify({ clientWidth: width,
    scrollWidth: document.documentElement.scrollWidth, images, tables });
  document.body.appendChild(pre);
});
</script>
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return module_campaign_store(tmp_path_factory, "browser-store", "campaign-browser", finished=True)


@pytest.fixture
def report(built, monkeypatch, tmp_path):
    folder, _ = built
    monkeypatch.setenv("EPDI_DATA_DIR", str(folder))
    get_settings.cache_clear()
    return build_report(StoreFacade(), "demo", tmp_path / "report")


def _chromium(*args: str, cwd) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        "--virtual-time-budget=10000",
        f"--user-data-dir={cwd / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=cwd, check=False)


def test_report_renders_in_chromium(report, tmp_path):
    page = report.index.read_text(encoding="utf-8")
    checked = report.index.with_name("checked.html")
    checked.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")

    dumped = _chromium("--dump-dom", checked.as_uri(), cwd=tmp_path)
    found = re.search(r'<pre id="check">(.*?)</pre>', dumped.stdout, re.DOTALL)
    assert found, f"no check result in Chromium's DOM (exit {dumped.returncode}): {dumped.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))

    assert len(check["images"]) == len(report.figures) > 0
    broken = [i["src"] for i in check["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert check["clientWidth"] <= WIDTH and check["tables"]
    wide = [t for t in check["tables"] if t["right"] > check["clientWidth"] + 0.5]
    assert not wide, f"tables wider than the page ({check['clientWidth']} px): {wide}"
    assert check["scrollWidth"] <= check["clientWidth"], "the page scrolls sideways"

    screenshot = tmp_path / "report.png"
    shot = _chromium(f"--screenshot={screenshot}", report.index.as_uri(), cwd=tmp_path)
    assert screenshot.is_file(), f"no screenshot (exit {shot.returncode}): {shot.stderr[-2000:]}"
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        colours = image.convert("L").getextrema()
    assert colours[0] < colours[1], "the screenshot is blank"
    if os.environ.get("EPDI_REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["EPDI_REPORT_SCREENSHOT"])
