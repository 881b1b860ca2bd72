"""The web page in a real browser: Debian's headless Chromium, driven by Playwright's sync API.

The app runs under uvicorn in a background thread on a free 127.0.0.1 port, with the same tiny
untrained model as the API tests. Playwright's own browser download is never used: the test
drives /usr/bin/chromium and skips, saying why, when it or Playwright is missing.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'selfattention[web]'")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'selfattention[web]'")

from selfattention.web import create_app  # noqa: E402
from test_web_api import LAYERS, N_HEADS, build_tiny_translator  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SENTENCE = "The dog ate the food because it was hungry."

# Functions, not expressions: the page's Content-Security-Policy forbids eval, which Playwright
# uses to poll an expression.
# Lines a query token shows: those not hidden by the page (display: none).
SHOWN_QUERIES = """() => [...document.querySelectorAll('#lines .attn-line')]
    .filter((line) => getComputedStyle(line).display !== 'none')
    .map((line) => Number(line.dataset.query))"""
WEIGHTS = "() => [...document.querySelectorAll('#lines .attn-line')].map((line) => line.dataset.weight).join(',')"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1, port chosen by the system; its base URL."""
    app = create_app(build_tiny_translator())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with exactly this request target (no client-side path clean-up)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "target", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/../../cli/serve.py"]
)
def test_the_live_server_refuses_paths_out_of_static(server: str, target: str) -> None:
    status, body = raw_get(server, target)
    assert status in (400, 404)
    assert b"import" not in body


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_page_translates_draws_and_explains(server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))

            page.goto(server + "/")
            assert page.input_value("#text") == "A dog ate the food because it was hungry."
            page.wait_for_function("() => document.getElementById('model-info').textContent.includes('d_model')")

            # An empty sentence is refused on the page, with a message.
            page.fill("#text", "   ")
            page.click("#translate-button")
            assert "type an English sentence" in page.inner_text("#error")

            # Translate: the translation appears and the lines are drawn.
            page.fill("#text", SENTENCE)
            page.click("#translate-button")
            page.wait_for_function("() => document.getElementById('translation').textContent.trim().length > 0")
            page.wait_for_selector("#lines .attn-line", state="attached")
            assert page.is_hidden("#error")
            queries = page.locator("#lines .token.query").count()
            keys = page.locator("#lines .token.key").count()
            assert queries == keys > 3  # encoder self-attention: the English on both sides
            assert page.locator("#lines .attn-line").count() == queries * keys
            assert page.locator("#heatmap rect.cell").count() == queries * keys
            first = page.evaluate(WEIGHTS)
            weights = [float(w) for w in first.split(",")]
            assert sum(weights) == pytest.approx(queries, abs=1e-3)  # each query row sums to 1
            assert page.locator("#layer option").count() == LAYERS
            assert page.locator("#head option").count() == N_HEADS + 1  # and the mean of heads

            # Another layer, then another head: the drawing changes.
            page.select_option("#layer", "0")
            page.wait_for_function(f"(old) => ({WEIGHTS})() !== old", arg=first)
            second = page.evaluate(WEIGHTS)
            page.select_option("#head", "1")
            page.wait_for_function(f"(old) => ({WEIGHTS})() !== old", arg=second)
            assert "layer 0, head 1" in page.get_attribute("#lines svg", "aria-label")

            # Hovering a token shows only its lines; leaving shows all; a click keeps them.
            token = page.locator("#lines .token.query").nth(2)
            token.hover()
            assert set(page.evaluate(SHOWN_QUERIES)) == {2}
            shares = page.locator("#lines .share").all_text_contents()
            assert all(re.fullmatch(r"(<)?[\d.]+ %", share) for share in shares), shares
            page.mouse.move(2, 2)
            assert set(page.evaluate(SHOWN_QUERIES)) == set(range(queries))
            token.click()
            page.mouse.move(2, 2)
            assert set(page.evaluate(SHOWN_QUERIES)) == {2}
            assert page.get_attribute("#lines .token.query >> nth=2", "aria-pressed") == "true"

            # The step-by-step view: shapes, the sqrt(d_k) value, percentages, one sentence per row.
            page.click("#explain-button")
            page.wait_for_selector("#explain table.matrix")
            explain = page.inner_text("#explain")
            assert "Step 1: similarity scores Q·Kᵀ" in explain
            assert (
                "Q = X·W_Q + b" in explain and "V = X·W_V + b" in explain
            )  # the tiny model has biases, as the CLI says
            assert "√d_k = √16 = 4" in explain
            assert len(re.findall(r"\d+(?:\.\d)? %", explain)) >= queries * keys
            assert "100 %" in explain  # the row sums
            assert page.locator("#explain .sentences li").count() == queries

            # The contextual view.
            page.click("#context-button")
            page.wait_for_selector("#context-table")
            assert page.locator("#context-table tbody tr").count() == LAYERS + 1
            assert "Apple" in page.inner_text("#context-result")

            # Decoder attention is masked: the heatmap greys the cells above the diagonal.
            page.select_option("#kind", "decoder")
            page.wait_for_function("() => document.querySelectorAll('#heatmap rect.cell.masked').length > 0")

            screenshot = tmp_path / "page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            width, height = png_size(screenshot)
            assert width >= 1000 and height > 900

            assert problems == []
            assert requested and all(url.startswith((server + "/", "data:")) for url in requested), requested
        finally:
            browser.close()
