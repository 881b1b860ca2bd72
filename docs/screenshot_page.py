"""Screenshots of the web page on the bundled model, for the docs: 1280 px and 390 px wide.

    .venv/bin/python docs/screenshot_page.py docs/images

Starts the page on 127.0.0.1 (a free port), drives Debian's Chromium with Playwright, translates
the seeds' sentence, picks "it" in the lines, and writes page-1280.png and page-390.png.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from selfattention.decoding import Translator
from selfattention.cli.common import resolve_model
from selfattention.web import create_app

SENTENCE = "A dog ate the food because it was hungry."


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(Translator.load(resolve_model(None)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for width, height in ((1280, 1500), (390, 2400)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(base)
            page.wait_for_function("() => document.getElementById('model-info').textContent.includes('d_model')")
            page.fill("#text", SENTENCE)
            page.click("#translate-button")
            page.wait_for_selector("#lines .attn-line", state="attached")
            it = page.locator("#lines .token.query", has_text="it").first
            it.click()
            page.mouse.move(1, 1)
            page.screenshot(path=str(out / f"page-{width}.png"))
            page.close()
        browser.close()
    server.should_exit = True
    print(f"wrote {out / 'page-1280.png'} and {out / 'page-390.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
