"""Screenshot of the browser game for the README: ``python docs/play_screenshot.py [docs/play.png]``.

Serves the paper's kitchen with a tip on loopback, plays the first few decisions in headless Chromium (the
system's ``chromium``) and saves the page mid-round.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from bpjax.config import compose_config
from bpjax.env.config import KitchenSpec
from bpjax.play import GameSetup, create_app
from bpjax.play.server import running


def main(out: str = "docs/play.png") -> None:
    spec = KitchenSpec.from_dict(compose_config([]).kitchen)
    setup = GameSetup(spec, 3, Path(tempfile.mkdtemp()), tip="The chef should never plate.")
    with running(create_app(setup)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        page = browser.new_page(viewport={"width": 980, "height": 560})
        page.goto(url + "?participant=demo")
        page.click("#continue")
        # everyone chops, then the chef starts cooking burger #1 and the next subtask is selected
        for slot, worker in [(0, "chef"), (3, "sous_chef"), (6, "server"), (1, "chef")]:
            page.wait_for_selector(f"button.subtask.available[data-slot='{slot}']")
            page.click(f"button.subtask[data-slot='{slot}']")
            page.click(f".worker[data-worker={worker}]")
        page.wait_for_selector("button.subtask.available[data-slot='4']")
        page.click("button.subtask[data-slot='4']")
        page.screenshot(path=out)
        browser.close()
    from PIL import Image  # a small PNG: the page has few colours

    Image.open(out).convert("RGB").quantize(colors=48).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
