"""The web API: every endpoint's answer, every refusal's status and message, and the page's files.

A tiny untrained model (a SentencePiece vocabulary of ~150 pieces trained here, 2 + 2 layers of
2 heads) stands in for the bundled one: its translations are nonsense, but every attention row
is real and must add up to 1.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import sys
import warnings
from typing import Any

import pytest
import torch

from selfattention.cli import build_parser, main
from selfattention.config import ModelConfig
from selfattention.data.tokenizer import EOS_ID, Tokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection import token_labels, trace_translation
from selfattention.inspection.words import find_word, group_words
from selfattention.model import build_model

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'selfattention[web]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install 'selfattention[test]'")

with warnings.catch_warnings():  # Starlette now prefers the httpx2 package; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

from selfattention.inspection.interactive import DRAWING_DIR
from selfattention.web import create_app
from selfattention.web.app import MAX_BODY_BYTES, STATIC_DIR

SENTENCE = "A dog ate the food because it was hungry."
MAX_CHARS = 300
D_MODEL, N_HEADS, LAYERS = 32, 2, 2
SUBJECTS = ["A dog", "The cat", "A man", "The woman", "A bird", "I", "We", "It"]
VERBS = ["ate", "saw", "love", "wanted", "took", "found"]
OBJECTS = ["the food", "an apple", "apple juice", "Apple phones", "the ball", "water"]
ENDINGS = ["", " because it was hungry", " because it was tired", " in the park"]
FRENCH = ["Un chien a mangé la nourriture parce qu'il avait faim.", "Le chat dort.", "J'aime le jus de pomme."]


def build_tiny_translator(seed: int = 0) -> Translator:
    """An untrained 2 + 2 layer model with a vocabulary learned from ~200 synthetic sentences."""
    rng = random.Random(seed)
    sentences = [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(ENDINGS)}." for _ in range(200)
    ]
    tokenizer = Tokenizer.train([*sentences, *FRENCH, SENTENCE], vocab_size=150)
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=D_MODEL,
        n_heads=N_HEADS,
        d_ff=64,
        encoder_layers=LAYERS,
        decoder_layers=LAYERS,
        dropout=0.0,
    )
    return Translator(build_model(config), tokenizer)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return build_tiny_translator()


@pytest.fixture(scope="module")
def client(translator: Translator) -> TestClient:
    return TestClient(create_app(translator, max_chars=MAX_CHARS))


def attention(client: TestClient, **body: object) -> dict:
    response = client.post("/api/attention", json={"text": SENTENCE, **body})
    assert response.status_code == 200, response.text
    return response.json()


# --- happy paths ----------------------------------------------------------------------------------


def test_model_reports_its_sizes_and_the_limits(client: TestClient, translator: Translator) -> None:
    response = client.get("/api/model")
    assert response.status_code == 200
    info = response.json()
    assert info["d_model"] == D_MODEL
    assert info["n_heads"] == N_HEADS
    assert info["head_dim"] == D_MODEL // N_HEADS
    assert info["encoder_layers"] == info["decoder_layers"] == LAYERS
    assert info["vocab_size"] == translator.tokenizer.vocab_size
    assert info["max_chars"] == MAX_CHARS
    assert info["max_sentences_context"] == 8


def test_translate_gives_the_translators_answer_and_the_tokens(client: TestClient, translator: Translator) -> None:
    response = client.post("/api/translate", json={"text": f"  {SENTENCE}  ", "beam": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["translation"] == translator.translate([SENTENCE], DecodingConfig(beam_size=2))[0]
    tokenizer = translator.tokenizer
    assert body["source_tokens"] == token_labels(tokenizer, [*tokenizer.encode(SENTENCE), EOS_ID])
    assert body["source_tokens"][-1] == "</s>"
    assert body["target_tokens"][0] == "<s>"


@pytest.mark.parametrize("kind", ["encoder", "decoder", "cross"])
@pytest.mark.parametrize(("layer", "head"), [(0, 0), (LAYERS - 1, N_HEADS - 1)])
def test_attention_rows_are_distributions_over_the_labelled_tokens(
    client: TestClient, kind: str, layer: int, head: int
) -> None:
    body = attention(client, kind=kind, layer=layer, head=head)
    source = client.post("/api/translate", json={"text": SENTENCE}).json()
    # A decoder row is named by the token its step writes: the French after <s>, then </s>.
    queries = source["source_tokens"] if kind == "encoder" else [*source["target_tokens"][1:], "</s>"]
    keys = source["target_tokens"] if kind == "decoder" else source["source_tokens"]
    assert body["rows"] == queries
    assert body["columns"] == keys
    assert (body["kind"], body["layer"], body["head"]) == (kind, layer, head)
    assert (body["layers"], body["heads"]) == (LAYERS, N_HEADS)
    assert body["causal"] is (kind == "decoder")
    for name in ("weights", "mean"):
        weights = torch.tensor(body[name])
        assert weights.shape == (len(queries), len(keys))
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(dim=-1), torch.ones(len(queries)), atol=1e-5, rtol=0)
        if kind == "decoder":  # a French piece never looks at the pieces after it
            assert torch.equal(torch.triu(weights, diagonal=1), torch.zeros_like(weights))


def test_attention_is_the_traced_attention_and_mean_is_the_mean_of_heads(
    client: TestClient, translator: Translator
) -> None:
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCE)
    heads = [attention(client, kind="cross", layer=1, head=h) for h in range(N_HEADS)]
    for head, body in enumerate(heads):
        expected = trace.recorder.attention("cross", 1).weights[0, head]
        torch.testing.assert_close(torch.tensor(body["weights"]), expected)
    mean = torch.stack([torch.tensor(body["weights"]) for body in heads]).mean(dim=0)
    torch.testing.assert_close(torch.tensor(heads[0]["mean"]), mean)
    assert heads[0]["translation"] == trace.translation


def test_switching_layer_or_head_does_not_translate_again(translator: Translator) -> None:
    app = create_app(translator)
    client = TestClient(app)
    for kind, layer, head in [("encoder", 0, 0), ("encoder", 1, 1), ("decoder", 0, 1), ("cross", 1, 0)]:
        attention(client, kind=kind, layer=layer, head=head)
    client.post("/api/explain", json={"text": SENTENCE, "kind": "cross", "layer": 0, "head": 1})
    assert (app.state.traces.misses, app.state.traces.hits) == (1, 4)
    attention(client, beam=1)  # another search is another trace
    assert app.state.traces.misses == 2


def test_a_given_french_side_replaces_the_translation(client: TestClient) -> None:
    body = attention(client, kind="cross", target="Le chat dort.")
    assert body["translation"] == "Le chat dort."
    assert body["rows"][-1] == "</s>"  # the row that writes the end of the sentence
    assert "".join(body["rows"][:-1]).replace("##", "").replace("␣", "") == "Lechatdort."
    assert attention(client, kind="cross", target="   ")["translation"] == attention(client)["translation"]


@pytest.mark.parametrize("kind", ["encoder", "decoder", "cross"])
def test_explain_shows_the_four_steps_of_one_head(client: TestClient, kind: str) -> None:
    response = client.post("/api/explain", json={"text": SENTENCE, "kind": kind, "layer": 1, "head": 1})
    assert response.status_code == 200, response.text
    e = response.json()
    drawn = attention(client, kind=kind, layer=1, head=1)
    assert e["query_tokens"] == drawn["rows"]
    assert e["key_tokens"] == drawn["columns"]
    t, s = len(e["query_tokens"]), len(e["key_tokens"])
    assert e["shapes"] == {"T": t, "S": s, "d_model": D_MODEL, "d_k": D_MODEL // N_HEADS}
    assert e["d_k"] == 16
    assert e["sqrt_dk"] == 4.0
    assert (e["layer"], e["head"], e["n_heads"]) == (1, 1, N_HEADS)
    assert e["title"]
    scores, scaled, weights = (torch.tensor(e[name]) for name in ("scores", "scaled_scores", "weights"))
    assert scores.shape == scaled.shape == weights.shape == (t, s)
    torch.testing.assert_close(scaled, scores / math.sqrt(e["d_k"]))
    if kind == "decoder":  # masked: softmax over the allowed columns only
        allowed = torch.ones(t, s, dtype=torch.bool).tril()
        expected = torch.softmax(scaled.masked_fill(~allowed, float("-inf")), dim=-1)
    else:
        expected = torch.softmax(scaled, dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(weights, torch.tensor(drawn["weights"]))
    assert e["causal"] is (kind == "decoder")
    output = torch.tensor(e["output"])
    assert output.shape == (t, 8)
    assert e["output_columns"] == 8
    assert len(e["row_sentences"]) == t
    for token, sentence in zip(e["query_tokens"], e["row_sentences"], strict=True):
        who = f"'{token}'" if kind == "encoder" else f"Writing '{token}'"
        assert sentence.startswith(who)
        # The three strongest keys and the rest, not every key of the row.
        assert 1 <= sentence.count("%") <= 4, sentence


def test_cross_attention_rows_are_the_tokens_written_as_in_the_alignment(
    client: TestClient, translator: Translator
) -> None:
    """Row i of cross-attention is the step that writes token i: "nourriture" looks at "food"."""
    body = attention(client, kind="cross", layer=0, head=0, target="Le chat dort.")
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCE, target="Le chat dort.")
    assert body["rows"] == trace.produced_labels
    assert body["rows"][0] != "<s>" and body["rows"][-1] == "</s>"
    decoder = attention(client, kind="decoder", layer=0, head=0, target="Le chat dort.")
    assert decoder["rows"] == trace.produced_labels
    assert decoder["columns"] == trace.target_labels  # what the decoder reads: <s> and the words written
    # The row that writes a word never sees it: its weight sits at or before the word it reads.
    weights = torch.tensor(decoder["weights"])
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_context_compares_the_word_layer_by_layer(client: TestClient) -> None:
    response = client.post(
        "/api/context", json={"sentences": ["I love Apple phones", "I love apple juice"], "word": "apple"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["word"] == "apple"
    assert body["layer_names"] == ["embedding", "layer 0", "layer 1"]
    similarity = torch.tensor(body["similarity"])
    assert similarity.shape == (LAYERS + 1, 2, 2)
    torch.testing.assert_close(similarity, similarity.transpose(1, 2))
    torch.testing.assert_close(torch.diagonal(similarity, dim1=1, dim2=2), torch.ones(LAYERS + 1, 2), atol=1e-5, rtol=0)
    assert (similarity.abs() <= 1 + 1e-5).all()
    assert body["found"] == ["Apple", "apple"]
    assert [("".join(p).replace("##", "")) for p in body["pieces"]] == ["Apple", "apple"]
    assert len(body["neighbours"]) == 2
    for near in body["neighbours"]:
        cosines = [n["cosine"] for n in near]
        assert near and cosines == sorted(cosines, reverse=True)


# --- refusals -------------------------------------------------------------------------------------


def refused(client: TestClient, path: str, status: int, message: str, **kwargs: Any) -> dict:
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str)
    assert message in body["detail"], body["detail"]
    return body


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/translate", {"text": ""}, "text is empty"),
        ("/api/translate", {"text": " \n\t "}, "text is empty"),
        ("/api/attention", {"text": "   "}, "text is empty"),
        ("/api/translate", {"text": "x" * (MAX_CHARS + 1)}, f"the limit is {MAX_CHARS} characters"),
        ("/api/attention", {"text": SENTENCE, "target": "y" * (MAX_CHARS + 1)}, f"the limit is {MAX_CHARS}"),
        ("/api/attention", {"text": SENTENCE, "layer": LAYERS}, "valid layers are 0 to 1"),
        ("/api/attention", {"text": SENTENCE, "kind": "cross", "layer": -1}, "valid layers are 0 to 1"),
        ("/api/attention", {"text": SENTENCE, "head": N_HEADS}, "valid heads are 0 to 1"),
        ("/api/explain", {"text": SENTENCE, "head": -1}, "head -1 does not exist: valid heads are 0 to 1"),
        ("/api/explain", {"text": SENTENCE, "kind": "decoder", "layer": 7}, "valid layers are 0 to 1"),
        ("/api/attention", {"text": SENTENCE, "kind": "sideways"}, "'encoder', 'decoder' or 'cross'"),
        ("/api/attention", {"text": SENTENCE, "layer": "top"}, "layer"),
        ("/api/translate", {"text": SENTENCE, "beam": 0}, "beam"),
        ("/api/translate", {"text": SENTENCE, "beam": 100}, "beam"),
        ("/api/translate", {}, "text: Field required"),
        ("/api/translate", {"text": 5}, "text"),
        ("/api/translate", ["not", "an", "object"], "request body"),
        ("/api/context", {"sentences": ["I love Apple phones"], "word": "apple"}, "give 2 to 8 sentences"),
        ("/api/context", {"sentences": ["I love apple"] * 9, "word": "apple"}, "give 2 to 8 sentences"),
        ("/api/context", {"sentences": ["I love apple", " "], "word": "apple"}, "sentence 2 is empty"),
        ("/api/context", {"sentences": ["I love apple", "an apple"], "word": "  "}, "word is empty"),
    ],
)
def test_bad_requests_are_refused_with_a_message(client: TestClient, path: str, body: object, message: str) -> None:
    refused(client, path, 422, message, json=body)


def test_a_word_missing_from_a_sentence_gets_find_words_message(client: TestClient, translator: Translator) -> None:
    sentences = ["I love Apple phones", "I love pears"]
    body = refused(client, "/api/context", 422, "no word 'apple'", json={"sentences": sentences, "word": "apple"})
    tokenizer = translator.tokenizer
    words = group_words(token_labels(tokenizer, [*tokenizer.encode(sentences[1]), EOS_ID]))
    with pytest.raises(ValueError, match="no word") as expected:
        find_word(words, "apple")
    assert body["detail"] == str(expected.value)


def test_malformed_json_is_a_422_with_a_message(client: TestClient) -> None:
    refused(
        client,
        "/api/translate",
        422,
        "not valid JSON",
        content=b'{"text": "A dog',
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "🙂🙂", "\x00", "\u200b", "é" * 40, "\\u0000"])
def test_odd_text_never_breaks_the_server(translator: Translator, text: str) -> None:
    client = TestClient(create_app(translator, max_chars=MAX_CHARS), raise_server_exceptions=False)
    for path in ("/api/translate", "/api/attention", "/api/explain"):
        response = client.post(path, json={"text": text, "beam": 1})
        assert response.status_code in (200, 422), (path, response.text)
        assert isinstance(response.json()["detail" if response.status_code == 422 else "translation"], str)


def test_a_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    big = b'{"text": "' + b"a" * MAX_BODY_BYTES + b'"}'
    refused(
        client, "/api/translate", 413, "larger than 64 KiB", content=big, headers={"content-type": "application/json"}
    )
    streamed = iter([big[: len(big) // 2], big[len(big) // 2 :]])  # no Content-Length: counted as it arrives
    refused(client, "/api/translate", 413, "64 KiB", content=streamed, headers={"content-type": "application/json"})
    assert client.post("/api/translate", json={"text": SENTENCE}).status_code == 200


# --- documentation, page and files ------------------------------------------------------------------


def test_openapi_documents_every_endpoint_and_its_errors(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    posts = ["/api/translate", "/api/attention", "/api/explain", "/api/heads", "/api/watch", "/api/contrast"]
    assert set(paths) == {"/api/model", "/api/context", *posts}
    assert "get" in paths["/api/model"]
    for path in (*posts, "/api/context"):
        responses = paths[path]["post"]["responses"]
        assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorMessage")
        assert "413" in responses
    components = schema["components"]["schemas"]
    assert components["AttentionRequest"]["properties"]["kind"]["description"]
    assert components["AttentionResponse"]["properties"]["weights"]["description"]
    assert components["ExplainResponse"]["properties"]["sqrt_dk"]["description"]


def test_openapi_declares_the_character_limit_the_server_enforces(translator: Translator) -> None:
    for limit in (MAX_CHARS, 37):
        schema = TestClient(create_app(translator, max_chars=limit)).get("/openapi.json").json()
        components = schema["components"]["schemas"]
        for name in ("TranslateRequest", "AttentionRequest", "ExplainRequest"):
            assert components[name]["properties"]["text"]["maxLength"] == limit, name
        target = components["AttentionRequest"]["properties"]["target"]
        assert [o["maxLength"] for o in target["anyOf"] if o.get("type") == "string"] == [limit]
        assert components["ContextRequest"]["properties"]["sentences"]["items"]["maxLength"] == limit
        assert components["ContextRequest"]["properties"]["word"]["maxLength"] == limit


def test_explain_says_whether_the_projections_add_a_bias(client: TestClient, translator: Translator) -> None:
    response = client.post("/api/explain", json={"text": SENTENCE, "kind": "encoder", "layer": 0, "head": 0})
    assert response.status_code == 200, response.text
    has_bias = translator.model.encoder.layers[0].self_attn.q_proj.bias is not None
    assert response.json()["has_bias"] is has_bias


def test_the_page_and_its_files_are_served_and_load_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    for element_id in ("translation", "kind", "layer", "head", "lines", "heatmap", "explain", "context"):
        assert f'id="{element_id}"' in html
    assert SENTENCE in html
    assert 'value="He sat by the river bank."' in html and 'value="bank"' in html
    for reference in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert reference.startswith(("/", "data:", "#")), reference
    for name, media_type in (
        ("app.js", "text/javascript"),
        ("attention-view.js", "text/javascript"),  # shared with the standalone exports
        ("style.css", "text/css"),
        ("drawing.css", "text/css"),
    ):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        folder = STATIC_DIR if (STATIC_DIR / name).exists() else DRAWING_DIR
        assert response.text == (folder / name).read_text(encoding="utf-8")
    pages = [*STATIC_DIR.iterdir(), *DRAWING_DIR.iterdir()]
    for path in pages:
        text = path.read_text(encoding="utf-8")
        name = path.name
        remote = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", text)
        assert [url for url in remote if url != "http://www.w3.org"] == [], name
        assert "@import" not in text and "url(" not in text


def asgi_get(app: object, path: str, raw_path: bytes) -> tuple[int, bytes]:
    """Call the app with exactly this path, as a server that does not normalise paths would."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


TRAVERSALS = [
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e%2fapp.py",
    "/static/..%5capp.py",
    "/static/../../cli/common.py",
    "/static/%2e%2e/%2e%2e/cli/common.py",
    "/static/%2e%2e",
    "/static/",
    "/static/app.py",
    "/static/.%2e/__init__.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_out_of_static_are_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert b"create_app" not in response.content and b"import" not in response.content
    from urllib.parse import unquote

    for scope_path in (unquote(path), path):
        status, body = asgi_get(client.app, scope_path, path.encode())
        assert status in (400, 404), scope_path
        assert b"create_app" not in body and b"import" not in body


# --- the serve command ------------------------------------------------------------------------------


def test_serve_binds_to_this_computer_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert args.port == 8000
    assert args.max_chars == 1000
    assert args.model is None
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "127.0.0.1" in help_text and "--max-chars" in help_text and "selfattention[web]" in help_text


def test_serve_runs_uvicorn_with_the_app(monkeypatch: pytest.MonkeyPatch, translator: Translator) -> None:
    import uvicorn
    from fastapi import FastAPI

    calls: list[tuple[object, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    monkeypatch.setattr(Translator, "load", classmethod(lambda cls, path, device="cpu": translator))
    monkeypatch.setattr("selfattention.cli.serve.resolve_model", lambda name: name)
    assert main(["serve", "--model", "tiny", "--port", "8123", "--max-chars", "50"]) == 0
    [(app, kwargs)] = calls
    assert isinstance(app, FastAPI)
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert TestClient(app).get("/api/model").json()["max_chars"] == 50


def test_serve_without_the_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # importing it now fails
    assert main(["serve"]) == 2
    assert "pip install 'selfattention[web]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"), [(["--port", "70000"], "not a port"), (["--max-chars", "0"], "at least 1")]
)
def test_serve_refuses_bad_options(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_watch_gives_every_step_of_the_decoding(client: TestClient, translator: Translator) -> None:
    from selfattention.inspection.watch import watch_translation

    response = client.post("/api/watch", json={"text": SENTENCE, "beam": 2, "top": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    watched = watch_translation(translator.model, translator.tokenizer, SENTENCE, DecodingConfig(beam_size=2), top_k=3)
    assert (
        body["translation"] == watched.translation == translator.translate([SENTENCE], DecodingConfig(beam_size=2))[0]
    )
    assert body["source_tokens"] == watched.source_labels
    assert (body["beam"], body["search_steps"]) == (2, watched.search_steps)
    assert len(body["steps"]) == len(watched.steps)
    for sent, step in zip(body["steps"], watched.steps, strict=True):
        assert (sent["reads"], sent["writes"]) == (step.reads, step.writes)
        assert [c["piece"] for c in sent["top"]] == [piece for piece, _ in step.top]
        assert len(sent["top"]) == 3
        cross = torch.tensor(sent["cross"])
        assert cross.shape == (LAYERS, N_HEADS, len(body["source_tokens"]))
        torch.testing.assert_close(cross, step.cross)
        assert [h["text"] for h in sent["beam"]] == [h.text for h in step.beam]


def test_heads_gives_every_layer_and_head(client: TestClient, translator: Translator) -> None:
    response = client.post("/api/heads", json={"text": SENTENCE, "kind": "cross"})
    assert response.status_code == 200, response.text
    body = response.json()
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCE)
    assert body["rows"] == trace.produced_labels and body["columns"] == trace.source_labels
    weights = torch.tensor(body["weights"])
    assert weights.shape == (LAYERS, N_HEADS, len(body["rows"]), len(body["columns"]))
    for layer in range(LAYERS):
        expected = trace.recorder.attention("cross", layer).weights[0]
        torch.testing.assert_close(weights[layer], expected.float(), atol=5e-5, rtol=0)
    assert body["causal"] is False
    assert client.post("/api/heads", json={"text": SENTENCE, "kind": "decoder"}).json()["causal"] is True


def test_contrast_compares_two_sentences(client: TestClient, translator: Translator) -> None:
    from selfattention.inspection.contrast import contrast

    sentences = ["The dog ate the soup because it was hungry.", "The dog ate the soup because it was delicious."]
    response = client.post("/api/contrast", json={"sentences": sentences, "beam": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = contrast(translator, *sentences, decoding=DecodingConfig(beam_size=1))
    assert body["translations"] == list(expected.translations)
    assert body["antecedents"] == ["dog", "soup"]
    assert [(h["layer"], h["head"]) for h in body["heads"]] == [(h.layer, h.head) for h in expected.heads]
    assert body["heads"][0]["shift"] == pytest.approx(expected.heads[0].shift)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/watch", {"text": "   "}, "empty"),
        ("/api/watch", {"text": SENTENCE, "top": 0}, "top"),
        ("/api/watch", {"text": SENTENCE, "beam": 9}, "beam"),
        ("/api/contrast", {"sentences": [SENTENCE]}, "exactly 2 sentences"),
        ("/api/contrast", {"sentences": [SENTENCE, SENTENCE], "pronoun": " "}, "pronoun is empty"),
        ("/api/contrast", {"sentences": [SENTENCE, SENTENCE], "antecedents": ["dog"]}, "two antecedents"),
        ("/api/contrast", {"sentences": [SENTENCE, SENTENCE], "antecedents": ["dog", "zebra"]}, "no word 'zebra'"),
        ("/api/heads", {"text": SENTENCE, "kind": "sideways"}, "kind"),
    ],
)
def test_the_learning_views_refuse_bad_requests_with_a_message(
    client: TestClient, path: str, body: dict, message: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
