"""Build the report for a results folder, time it, and screenshot pages in headless Chromium.

    python benchmarks/report_screenshots.py RESULTS OUT_SITE SHOTS [RUN_ID=NAME ...]

Writes ``SHOTS/index.png`` and ``SHOTS/NAME.png`` for each ``RUN_ID=NAME`` (full-page,
1280 px wide, reduced to a 256-colour palette to stay small). Needs the ``test`` extra
(playwright) and a Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from nlbsuite.report import build_report


def shoot(browser, page_path: Path, png: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(png), full_page=True)
    page.close()
    assert not errors, errors
    Image.open(png).convert("RGB").quantize(256).save(png, optimize=True)
    print(f"{png}: {png.stat().st_size / 1024:.0f} KiB")


def main(results: str, site: str, shots: str, *pages: str) -> None:
    start = time.perf_counter()
    index = build_report(results, site)
    print(f"report built in {time.perf_counter() - start:.1f} s: {index}")
    out = Path(shots)
    out.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("chromium") or shutil.which("google-chrome")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        shoot(browser, index, out / "index.png")
        for spec in pages:
            run_id, name = spec.split("=")
            shoot(browser, Path(site) / "runs" / f"{run_id}.html", out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
