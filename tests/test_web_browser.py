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

from selfattention.inspection import trace_translation  # noqa: E402
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
            assert "type a sentence first" in page.inner_text("#error")

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
            assert "'bank'" in page.inner_text("#context-result")

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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the tests below."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


def open_page(browser: object, server: str, width: int = 1280) -> object:
    """The page, loaded, its model described; console errors fail the test at the end."""
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page.set_default_timeout(30_000)
    page.problems = []
    page.on("console", lambda message: page.problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(server + "/")
    page.wait_for_function("() => document.getElementById('model-info').textContent.includes('d_model')")
    return page


def translated(page: object, text: str = SENTENCE) -> None:
    page.fill("#text", text)
    page.click("#translate-button")
    page.wait_for_selector("#lines .attn-line", state="attached")


def switch_kind(page: object, kind: str) -> None:
    page.select_option("#kind", kind)
    page.wait_for_function(
        "(kind) => (document.querySelector('#lines svg') || {getAttribute: () => ''})"
        ".getAttribute('aria-label').includes(kind + ' attention')",
        arg=kind,
    )


SELECTED = """() => [...document.querySelectorAll('#lines .token.query, #heatmap .row-label')]
    .filter((t) => t.classList.contains('active') || t.getAttribute('aria-pressed') === 'true')
    .map((t) => t.textContent)"""


@pytest.mark.slow
def test_switching_the_kind_of_attention_leaves_nothing_selected(browser: object, server: str) -> None:
    page = open_page(browser, server)
    translated(page)
    page.locator("#lines .token.query").nth(4).click()  # the pointer stays where the word was
    assert len(page.evaluate(SELECTED)) >= 1
    for kind in ("cross", "decoder", "encoder"):
        switch_kind(page, kind)
        assert page.evaluate(SELECTED) == [], kind  # nothing carried over from the other kind's words
        assert len(set(page.evaluate(SHOWN_QUERIES))) == page.locator("#lines .token.query").count()
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_decoder_rows_are_the_words_written_and_the_page_says_so(
    browser: object, server: str, translator_labels: dict
) -> None:
    page = open_page(browser, server)
    translated(page)
    switch_kind(page, "cross")
    rows = page.locator("#lines .token.query").all_text_contents()
    assert rows == translator_labels["produced"]  # as in `attention --view alignment`
    assert "writes" in page.inner_text("#kind-note") and "alignment" in page.inner_text("#kind-note")
    assert page.locator("#lines .column-title").first.text_content() == "writing (queries)"
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_an_error_clears_the_old_translation_and_drawings(browser: object, server: str) -> None:
    page = open_page(browser, server)
    translated(page)
    assert page.inner_text("#translation").strip()
    page.fill("#text", "   ")
    page.click("#translate-button")
    assert "type a sentence first" in page.inner_text("#error")
    assert page.inner_text("#translation").strip() == ""
    assert page.locator("#lines .attn-line").count() == 0 and page.locator("#heatmap rect").count() == 0
    assert page.is_disabled("#kind")
    page.close()


INSIDE_THEIR_SVG = """(selector) => [...document.querySelectorAll(selector + ' text')].filter((text) => {
    const box = text.getBoundingClientRect(), svg = text.ownerSVGElement.getBoundingClientRect();
    return box.width > 0 && (box.left < svg.left - 0.5 || box.top < svg.top - 0.5
        || box.right > svg.right + 0.5 || box.bottom > svg.bottom + 0.5);
}).map((text) => text.textContent)"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390])
def test_no_label_is_clipped_and_the_page_fits_the_screen(browser: object, server: str, width: int) -> None:
    page = open_page(browser, server, width)
    translated(page, "A dog ate the food because it was hungry, unbelievably hungry.")
    for kind in ("encoder", "cross"):
        switch_kind(page, kind)
        assert page.evaluate(INSIDE_THEIR_SVG, "#heatmap") == [], kind  # e.g. "##cause" whole, not "#cause"
        assert page.evaluate(INSIDE_THEIR_SVG, "#lines") == [], kind
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    for control in ("#kind", "#layer", "#head", "#translate-button"):
        box = page.locator(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, control
    # Legends: the lines' thickness and the heatmap's colour bar.
    assert page.locator("#lines .legend .legend-line").count() == 3
    assert page.locator("#heatmap .colour-bar rect").count() == 10
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_reading_the_rows_names_the_strongest_keys_folded_away(browser: object, server: str) -> None:
    page = open_page(browser, server)
    translated(page)
    page.click("#explain-button")
    page.wait_for_selector("#explain details.reading")
    assert page.get_attribute("#explain details.reading", "open") is None  # folded until asked for
    assert page.is_hidden("#explain .sentences")
    page.click("#explain details.reading summary")
    sentences = page.locator("#explain .sentences li").all_text_contents()
    assert len(sentences) == page.locator("#lines .token.query").count()
    assert all(1 <= sentence.count("%") <= 4 for sentence in sentences), sentences
    page.close()


@pytest.mark.slow
def test_the_context_section_starts_from_one_vector_and_explains_its_first_row(browser: object, server: str) -> None:
    page = open_page(browser, server)
    page.fill("#context-a", "A dog ate the food.")
    page.fill("#context-b", "A dog ate the ball.")
    page.fill("#context-word", "dog")
    page.click("#context-button")
    page.wait_for_selector("#context-table")
    first = page.locator("#context-table tbody tr").first.locator("td.value").text_content()
    assert first == "1.000"  # the same piece at the same position: the same start
    result = page.inner_text("#context-result")
    assert "Same pieces at the same position" in result and "Nearest" not in result
    assert "▁" not in result  # one notation for pieces
    page.fill("#context-a", "I love Apple phones")
    page.fill("#context-b", "I love apple juice")
    page.fill("#context-word", "apple")
    page.click("#context-button")
    page.wait_for_function("() => document.getElementById('context-result').textContent.includes('start apart')")
    note = page.inner_text("#pieces-note")
    assert "##" in note and "␣" in note
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_the_html_export_highlights_a_words_lines_on_hover(browser: object, tmp_path: Path) -> None:
    from selfattention.inspection.interactive import attention_page

    torch = pytest.importorskip("torch")
    weights = torch.softmax(torch.randn(5, 6, generator=torch.Generator().manual_seed(0)) * 3, dim=-1)
    rows = ["A", "dog", "ate", "it", "</s>"]
    columns = ["<s>", "Un", "chien", "a", "mangé", "."]
    out = tmp_path / "export.html"
    out.write_text(attention_page(weights, rows, columns, title="cross attention, layer 1", writes=True))
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(out.as_uri())
    page.wait_for_selector("#lines .attn-line", state="attached")
    assert page.locator("#lines .attn-line").count() == 30
    assert page.locator("#heatmap rect.cell").count() == 30
    page.locator("#lines .token.query").nth(3).hover()
    assert set(page.evaluate(SHOWN_QUERIES)) == {3}
    shares = page.locator("#lines .share").all_text_contents()
    for share, weight in zip(shares, weights[3].tolist(), strict=True):
        shown = float(share.split()[0].lstrip("<"))
        assert shown == pytest.approx(100 * weight, abs=0.51 if shown >= 10 else 0.06) or share == "<0.1 %"
    page.mouse.move(1, 1)
    assert len(set(page.evaluate(SHOWN_QUERIES))) == 5
    assert problems == [] and all(url.startswith("file:") for url in requested), requested
    page.close()


@pytest.fixture(scope="module")
def translator_labels() -> dict:
    translator = build_tiny_translator()
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCE)
    return {"produced": trace.produced_labels}


# --- the new views: each reachable from the page's start in at most two clicks ---------------------


@pytest.mark.slow
def test_every_view_is_one_link_away(browser: object, server: str) -> None:
    page = open_page(browser, server)
    links = {a.get_attribute("href"): a.text_content() for a in page.locator(".page-nav a").all()}
    for section in ("#attention-title", "#heads-title", "#watch-title", "#contrast-title", "#map-title"):
        assert section in links, links
        assert page.locator(section).count() == 1
    page.click(".page-nav a[href='#watch-title']")  # click 1; the Watch button is click 2
    page.click("#watch-button")
    page.wait_for_selector("#watch-beam tr")
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_watch_it_translate_steps_through_the_decoding(browser: object, server: str, translator_labels: dict) -> None:
    from selfattention.decoding import DecodingConfig
    from selfattention.inspection.watch import watch_translation

    translator = build_tiny_translator()
    watched = watch_translation(translator.model, translator.tokenizer, SENTENCE, DecodingConfig(beam_size=2))
    page = open_page(browser, server)
    page.fill("#text", SENTENCE)
    page.click("summary")  # the options
    page.fill("#beam", "2")
    page.click("#watch-button")
    page.wait_for_selector("#watch-beam tbody tr")
    assert page.inner_text("#watch-step-count") == str(len(watched.steps))

    def shows(index: int) -> None:
        step = watched.steps[index]
        assert page.inner_text("#watch-step-number") == str(index + 1)
        assert page.inner_text("#watch-written .piece.current") == step.writes
        assert f"reads '{step.reads}'" in page.inner_text("#watch-written")
        pieces = page.locator("#watch-top .bar-label").all_text_contents()
        assert pieces == [piece for piece, _ in step.top]
        weights = [
            float(w)
            for w in page.eval_on_selector_all("#watch-source .source-piece", "(s) => s.map((e) => e.dataset.weight)")
        ]
        expected = step.cross[-1].mean(dim=0).tolist()  # the last layer, mean of its heads
        assert weights == pytest.approx(expected, abs=1e-5)
        assert sum(weights) == pytest.approx(1.0, abs=1e-4)
        beam = page.locator("#watch-beam tbody tr:not(.ended) td:nth-child(2)").all_text_contents()
        assert beam == [h.text or "(nothing yet)" for h in step.beam]

    shows(0)
    page.click("#watch-next")
    shows(1)
    page.click("#watch-previous")
    shows(0)
    page.fill("#watch-step", str(len(watched.steps) - 1))
    page.dispatch_event("#watch-step", "input")
    shows(len(watched.steps) - 1)
    page.click("#watch-first")
    page.click("#watch-play")
    assert page.get_attribute("#watch-play", "aria-label") == "pause"
    page.wait_for_function("() => document.getElementById('watch-step-number').textContent === '2'")
    page.click("#watch-play")  # pause
    assert page.get_attribute("#watch-play", "aria-label") == "play"
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_il_or_elle_shows_both_translations_and_the_heads_that_move(browser: object, server: str) -> None:
    from selfattention.decoding import DecodingConfig
    from selfattention.inspection.contrast import contrast

    translator = build_tiny_translator()
    first = "The dog ate the soup because it was hungry."
    second = "The dog ate the soup because it was delicious."
    expected = contrast(translator, first, second, decoding=DecodingConfig(beam_size=4))
    page = open_page(browser, server)
    page.click(".page-nav a[href='#contrast-title']")
    page.click("#contrast-button")
    page.wait_for_selector("#contrast-heads")
    lines = page.locator(".translation-line").all_text_contents()
    assert lines == [f"→ {t}" for t in expected.translations]
    rows = page.locator("#contrast-heads tbody tr").all()
    assert len(rows) == min(6, LAYERS * N_HEADS)  # the six that move most
    for row, head in zip(rows, expected.heads, strict=False):
        cells = row.locator("td").all_text_contents()
        assert (int(cells[0]), int(cells[1])) == (head.layer, head.head)
        assert float(cells[4].split()[0].replace("−", "-").replace("+", "")) == pytest.approx(
            100 * head.shift, abs=0.051
        )
    # Another pair: antecedents it cannot find are named in the error.
    page.fill("#contrast-antecedents", "dog, zebra")
    page.click("#contrast-button")
    page.wait_for_function("() => !document.getElementById('contrast-error').hidden")
    assert "zebra" in page.inner_text("#contrast-error")
    assert [p for p in page.problems if "status of 422" not in p] == []  # Chromium logs the refused request
    page.close()


@pytest.mark.slow
def test_head_view_and_model_view_show_every_head(browser: object, server: str) -> None:
    page = open_page(browser, server)
    translated(page)
    page.wait_for_selector("#model-view .thumbnail")
    assert page.locator("#model-view .thumbnail").count() == LAYERS * N_HEADS
    assert page.locator("#head-legend .head-chip").count() == N_HEADS
    heads_drawn = set(page.eval_on_selector_all("#head-view .head-line", "(ls) => ls.map((l) => l.dataset.head)"))
    assert heads_drawn == {str(h) for h in range(N_HEADS)}
    # Pointing at a word shows only its lines, in every head's colour.
    page.locator("#head-view .token.query").nth(3).hover()
    shown = page.eval_on_selector_all(
        "#head-view .head-line",
        "(ls) => ls.filter((l) => getComputedStyle(l).display !== 'none').map((l) => [l.dataset.query, l.dataset.head, l.getAttribute('stroke')])",
    )
    assert shown and {q for q, _, _ in shown} == {"3"}
    assert len({colour for _, _, colour in shown}) == len({head for _, head, _ in shown})
    # A head switched off in the legend leaves the drawing.
    page.click("#head-legend .head-chip >> nth=0")
    assert page.get_attribute("#head-legend .head-chip >> nth=0", "aria-pressed") == "false"
    visible_heads = page.eval_on_selector_all(
        "#head-view .head-line",
        "(ls) => ls.filter((l) => getComputedStyle(l).display !== 'none').map((l) => l.dataset.head)",
    )
    assert "0" not in visible_heads
    # A thumbnail opens its layer and head in section 2.
    page.click("#model-view .thumbnail[data-layer='0'][data-head='1']")
    page.wait_for_function(
        "() => document.querySelector('#lines svg').getAttribute('aria-label').includes('layer 0, head 1')"
    )
    assert page.input_value("#layer") == "0" and page.input_value("#head") == "1"
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_the_model_map_shows_where_the_view_sits_and_selects_it(browser: object, server: str) -> None:
    page = open_page(browser, server)
    page.wait_for_selector("#model-map .map-box")
    attention_boxes = page.locator("#model-map .map-box.attention")
    assert attention_boxes.count() == LAYERS + 2 * LAYERS  # encoder self; decoder self and cross
    text = page.inner_text("#map-section")
    assert "d_k = 16" in text and f"{N_HEADS} heads" in text
    current = page.locator("#model-map .map-box.current")
    assert current.count() == 1
    assert (current.get_attribute("data-kind"), current.get_attribute("data-layer")) == ("encoder", str(LAYERS - 1))
    translated(page)
    box = page.locator("#model-map .map-box[data-kind='cross'][data-layer='0']")
    box.focus()
    page.keyboard.press("Enter")  # keyboard-usable
    page.wait_for_function(
        "() => document.querySelector('#lines svg').getAttribute('aria-label').includes('cross attention, layer 0')"
    )
    assert page.input_value("#kind") == "cross" and page.input_value("#layer") == "0"
    current = page.locator("#model-map .map-box.current")
    assert (current.get_attribute("data-kind"), current.get_attribute("data-layer")) == ("cross", "0")
    assert page.problems == []
    page.close()


@pytest.mark.slow
def test_every_control_has_a_label(browser: object, server: str) -> None:
    page = open_page(browser, server)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')].filter((c) =>
            !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim()
        ).map((c) => c.id || c.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []
    page.close()
