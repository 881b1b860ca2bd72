"""The JSON API behind the web page, and the page itself.

``create_app(translator)`` returns a FastAPI application that translates a sentence, traces every
attention step of the translation (:func:`selfattention.inspection.trace_translation`), and hands
one layer and head at a time to the page in ``static/``: the seeds' line view, a heatmap, the four
steps of one head (:func:`selfattention.inspection.explain_head`) and a word's vector in context
(:func:`selfattention.inspection.context.compare_contexts`).

Bad input is answered with a 4xx and ``{"detail": "<one readable sentence>"}``, never a 500.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from torch import Tensor

from selfattention import __version__
from selfattention.config import ModelConfig
from selfattention.decoding import (
    MAX_SENTENCE_CHARS,
    DecodingConfig,
    InputError,
    Translator,
    check_sentence,
    check_target,
)
from selfattention.inspection import TranslationTrace, explain_head, trace_translation
from selfattention.inspection.aggregate import mean_over_heads
from selfattention.inspection.context import compare_contexts
from selfattention.inspection.explain import KIND_TITLES
from selfattention.inspection.interactive import DRAWING_DIR
from selfattention.inspection.recorder import AttentionKind
from selfattention.web.learning_routes import add_learning_routes

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page loads nothing from anywhere else: no CDN, no fonts, no analytics.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MAX_BODY_BYTES = 64 * 1024
TRACES_KEPT = 8
EXPLAIN_COLUMNS = 8  # columns of Z sent by /api/explain
ROW_SENTENCE_KEYS = 3  # each row's sentence names its strongest keys and sums the rest


# --- request and response bodies -------------------------------------------------------------------

TEXT = "The source sentence, English for the bundled model (not empty; at most the server's character limit, see GET /api/model)."
BEAM = "Beam size of the search; 1 is greedy search."
KIND = "encoder: self-attention over the source; decoder: masked self-attention over the target; cross: target queries, source keys."


class ModelInfo(BaseModel):
    d_model: int = Field(description="Width of every token vector.")
    n_heads: int = Field(description="Attention heads per layer.")
    head_dim: int = Field(description="d_k = d_model / n_heads: the width of one head's queries, keys and values.")
    d_ff: int = Field(description="Width of the feed-forward sublayer's hidden layer.")
    encoder_layers: int = Field(description="Encoder layers (each has one self-attention).")
    decoder_layers: int = Field(description="Decoder layers (each has a masked self-attention and a cross-attention).")
    vocab_size: int = Field(description="Subword pieces in the vocabulary both languages share.")
    max_chars: int = Field(description="The longest text this server accepts, in characters.")
    source_lang: str = Field(description="The language the model translates from (a code: en).")
    target_lang: str = Field(description="The language the model translates into (a code: fr).")
    max_sentences_context: int = Field(description="The most sentences /api/context compares at once.")


class TranslateRequest(BaseModel):
    text: str = Field(description=TEXT, examples=["A dog ate the food because it was hungry."])
    beam: int = Field(4, ge=1, le=8, description=BEAM)


class TranslateResponse(BaseModel):
    translation: str = Field(description="The translation (into the target language: French for the bundled model).")
    source_tokens: list[str] = Field(
        description="The source pieces the encoder saw, ending with </s>; ## continues a word, ␣ starts one."
    )
    target_tokens: list[str] = Field(description="The target pieces the decoder saw, starting with <s>.")


class AttentionRequest(BaseModel):
    text: str = Field(description=TEXT, examples=["A dog ate the food because it was hungry."])
    kind: AttentionKind = Field("encoder", description=KIND)
    layer: int = Field(0, description="Layer, from 0.")
    head: int = Field(0, description="Head, from 0.")
    target: str | None = Field(
        None, description="A target side to use instead of the model's translation (empty: the model's own)."
    )
    beam: int = Field(4, ge=1, le=8, description=BEAM)


class AttentionResponse(BaseModel):
    translation: str = Field(description="The target side the attention was recorded on.")
    kind: AttentionKind = Field(description=KIND)
    layer: int = Field(description="The layer shown.")
    head: int = Field(description="The head shown.")
    rows: list[str] = Field(
        description="Query tokens, one per row of the weights (T). A decoder row (decoder and cross) is named by "
        "the token that step writes; it reads the token before it."
    )
    columns: list[str] = Field(description="Key tokens, one per column of the weights (S).")
    weights: list[list[float]] = Field(description="T x S attention weights of this head; each row sums to 1.")
    mean: list[list[float]] = Field(description="T x S attention weights averaged over this layer's heads.")
    layers: int = Field(description="How many layers this kind of attention has.")
    heads: int = Field(description="How many heads each layer has.")
    causal: bool = Field(description="True for decoder self-attention: row i may only look at columns 0 to i.")


class ExplainRequest(AttentionRequest):
    pass


class HeadsRequest(BaseModel):
    text: str = Field(description=TEXT, examples=["A dog ate the food because it was hungry."])
    kind: AttentionKind = Field("encoder", description=KIND)
    target: str | None = Field(
        None, description="A target side to use instead of the model's translation (empty: the model's own)."
    )
    beam: int = Field(4, ge=1, le=8, description=BEAM)


class HeadsResponse(BaseModel):
    translation: str = Field(description="The target side the attention was recorded on.")
    kind: AttentionKind = Field(description=KIND)
    rows: list[str] = Field(description="Query tokens (T); a decoder row is named by the token its step writes.")
    columns: list[str] = Field(description="Key tokens (S).")
    weights: list[list[list[list[float]]]] = Field(
        description="Layers x heads x T x S: every head's attention weights, rounded to 4 decimals."
    )
    causal: bool = Field(description="True for decoder self-attention: row i may only look at columns 0 to i.")


class Shapes(BaseModel):
    T: int = Field(description="Query tokens (rows).")
    S: int = Field(description="Key tokens (columns).")
    d_model: int = Field(description="Width of X, the layer's input.")
    d_k: int = Field(description="Width of this head's Q, K and V.")


class ExplainResponse(BaseModel):
    translation: str = Field(description="The target side the attention was recorded on.")
    kind: AttentionKind = Field(description=KIND)
    title: str = Field(description="What this kind of attention is, in words.")
    layer: int = Field(description="The layer shown.")
    head: int = Field(description="The head shown.")
    n_heads: int = Field(description="Heads in this layer.")
    query_tokens: list[str] = Field(description="Row labels (T).")
    key_tokens: list[str] = Field(description="Column labels (S).")
    shapes: Shapes = Field(description="The sizes of the matrices.")
    d_k: int = Field(description="The width of one head's queries and keys.")
    sqrt_dk: float = Field(description="sqrt(d_k), the number step 2 divides by.")
    has_bias: bool = Field(description="Whether the projections add a bias: Q = X·W_Q + b (and K, V likewise).")
    causal: bool = Field(description="True for decoder self-attention: row i may only look at columns 0 to i.")
    scores: list[list[float]] = Field(description="Step 1: Q·Kᵀ, T x S similarity scores.")
    scaled_scores: list[list[float]] = Field(description="Step 2: Q·Kᵀ / sqrt(d_k).")
    weights: list[list[float]] = Field(
        description="Step 3: softmax of each row of the scaled scores (masked for the decoder)."
    )
    output: list[list[float]] = Field(description="Step 4: Z = weights·V, T rows, the first columns only.")
    output_columns: int = Field(description="How many of Z's d_k columns are in `output`.")
    row_sentences: list[str] = Field(
        description="One sentence per row saying where that token looks most: its 3 strongest keys and the rest."
    )


class ContextRequest(BaseModel):
    sentences: list[str] = Field(
        description="Two or more sentences that share the word.",
        examples=[["I love Apple phones", "I love apple juice"]],
    )
    word: str = Field(description="The shared word (case-insensitive).", examples=["apple"])


class Neighbour(BaseModel):
    piece: str = Field(description="A vocabulary piece (## continues a word, ␣ starts one).")
    cosine: float = Field(description="Cosine similarity to the word's last-layer vector.")


class ContextResponse(BaseModel):
    word: str = Field(description="The word looked for.")
    layer_names: list[str] = Field(description="'embedding', then 'layer 0', 'layer 1', ...")
    similarity: list[list[list[float]]] = Field(
        description="Per layer, the N x N cosine similarity between the word's vectors in the N sentences."
    )
    found: list[str] = Field(description="The word as written in each sentence.")
    pieces: list[list[str]] = Field(
        description="Per sentence, the subword pieces that make up the word (## continues a word, ␣ starts one)."
    )
    positions: list[int] = Field(description="Per sentence, the position of the word's first piece (from 0).")
    neighbours: list[list[Neighbour]] = Field(
        description="Per sentence, the vocabulary pieces nearest the last layer's vector."
    )


class ErrorMessage(BaseModel):
    detail: str = Field(description="What was wrong with the request, in one sentence.")
    errors: list[dict[str, object]] | None = Field(
        None, description="For a body that does not fit the schema: each problem's location and message."
    )


ERRORS: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorMessage, "description": "The request was not valid (the message says why)."},
    413: {"model": ErrorMessage, "description": f"The request body is larger than {MAX_BODY_BYTES} bytes."},
}


# --- the application ------------------------------------------------------------------------------


class TraceCache:
    """The last few traces, keyed by (text, target, beam): switching layer or head never re-translates.

    One lock guards the cache and the model: requests use the model one at a time.
    """

    def __init__(self, translator: Translator, lock: threading.Lock, size: int = TRACES_KEPT) -> None:
        self.translator = translator
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = lock
        self._traces: OrderedDict[tuple[str, str | None, int], TranslationTrace] = OrderedDict()

    def get(self, text: str, target: str | None, beam: int) -> TranslationTrace:
        key = (text, target, beam)
        with self._lock:
            if key in self._traces:
                self.hits += 1
                self._traces.move_to_end(key)
                return self._traces[key]
            self.misses += 1
            trace = trace_translation(
                self.translator.model, self.translator.tokenizer, text, target, DecodingConfig(beam_size=beam)
            )
            self._traces[key] = trace
            while len(self._traces) > self.size:
                self._traces.popitem(last=False)
            return trace


def _openapi_with_limits(app: FastAPI, max_chars: int) -> dict[str, Any]:
    """FastAPI's OpenAPI document, with this server's character limit on every text it takes."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for model in schema.get("components", {}).get("schemas", {}).values():
            for name, field in model.get("properties", {}).items():
                if name in ("text", "target", "word", "pronoun"):
                    for option in field.get("anyOf", [field]):
                        if option.get("type") == "string":
                            option["maxLength"] = max_chars
                elif name == "sentences" and field.get("type") == "array":
                    field.setdefault("items", {})["maxLength"] = max_chars
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    translator: Translator, *, max_chars: int = MAX_SENTENCE_CHARS, max_sentences_context: int = 8
) -> FastAPI:
    """The API and the page for one translator."""
    config = translator.model.config
    if config is None:
        raise ValueError("the translator's model has no configuration (build it with build_model)")
    lock = threading.Lock()
    traces = TraceCache(translator, lock)
    assets = {
        path.name: path
        for folder in (STATIC_DIR, DRAWING_DIR)  # the page's own files, and the drawings it shares with exports
        for path in folder.iterdir()
        if path.is_file() and path.suffix in MEDIA_TYPES
    }

    app = FastAPI(
        title="selfattention",
        summary="See the self-attention of a Transformer translator, one step at a time.",
        version=__version__,
        docs_url=None,  # FastAPI's docs pages load scripts from a CDN; the schema stays at /openapi.json
        redoc_url=None,
    )
    app.state.traces = traces
    app.openapi = lambda: _openapi_with_limits(app, max_chars)  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(InputError, _unusable_text)

    def sentence(text: str, what: str = "text") -> str:
        return check_sentence(text, what=what, max_chars=max_chars, encode=translator.tokenizer.encode)

    def french(target: str | None) -> str | None:
        return check_target(target, max_chars=max_chars)

    def check_layer_and_head(kind: AttentionKind, layer: int, head: int) -> int:
        layers = _layers(config, kind)
        if not 0 <= layer < layers:
            raise HTTPException(
                422, f"layer {layer} does not exist for {kind} attention: valid layers are 0 to {layers - 1}"
            )
        if not 0 <= head < config.n_heads:
            raise HTTPException(422, f"head {head} does not exist: valid heads are 0 to {config.n_heads - 1}")
        return layers

    @app.get("/api/model", response_model=ModelInfo, summary="The model's sizes and the server's limits")
    def model_info() -> ModelInfo:
        return ModelInfo(
            d_model=config.d_model,
            n_heads=config.n_heads,
            head_dim=config.head_dim,
            d_ff=config.d_ff,
            encoder_layers=config.encoder_layers,
            decoder_layers=config.decoder_layers,
            vocab_size=config.vocab_size,
            max_chars=max_chars,
            source_lang=config.source_lang,
            target_lang=config.target_lang,
            max_sentences_context=max_sentences_context,
        )

    @app.post("/api/translate", response_model=TranslateResponse, responses=ERRORS, summary="Translate a sentence")
    def translate(request: TranslateRequest) -> TranslateResponse:
        trace = traces.get(sentence(request.text), None, request.beam)
        return TranslateResponse(
            translation=trace.translation, source_tokens=trace.source_labels, target_tokens=trace.target_labels
        )

    @app.post(
        "/api/attention",
        response_model=AttentionResponse,
        responses=ERRORS,
        summary="One head's attention weights for a translated sentence",
    )
    def attention(request: AttentionRequest) -> AttentionResponse:
        text, target = sentence(request.text), french(request.target)
        layers = check_layer_and_head(request.kind, request.layer, request.head)
        trace = traces.get(text, target, request.beam)
        weights = trace.recorder.attention(request.kind, request.layer).weights[0]  # (H, T, S)
        rows, columns = trace.labels(request.kind)
        return AttentionResponse(
            translation=trace.translation,
            kind=request.kind,
            layer=request.layer,
            head=request.head,
            rows=rows,
            columns=columns,
            weights=_rows(weights[request.head]),
            mean=_rows(mean_over_heads(weights)),
            layers=layers,
            heads=config.n_heads,
            causal=request.kind == "decoder",
        )

    @app.post(
        "/api/heads",
        response_model=HeadsResponse,
        responses=ERRORS,
        summary="Every layer's and head's attention at once, for the head and model views",
    )
    def heads(request: HeadsRequest) -> HeadsResponse:
        text, target = sentence(request.text), french(request.target)
        trace = traces.get(text, target, request.beam)
        rows, columns = trace.labels(request.kind)
        layers = [
            trace.recorder.attention(request.kind, layer).weights[0] for layer in range(_layers(config, request.kind))
        ]
        return HeadsResponse(
            translation=trace.translation,
            kind=request.kind,
            rows=rows,
            columns=columns,
            weights=[[_rows(head, 4) for head in layer] for layer in layers],
            causal=request.kind == "decoder",
        )

    @app.post(
        "/api/explain", response_model=ExplainResponse, responses=ERRORS, summary="One head's four steps, with numbers"
    )
    def explain(request: ExplainRequest) -> ExplainResponse:
        text, target = sentence(request.text), french(request.target)
        check_layer_and_head(request.kind, request.layer, request.head)
        trace = traces.get(text, target, request.beam)
        rows, columns = trace.labels(request.kind)
        e = explain_head(trace.recorder.attention(request.kind, request.layer), request.head, rows, columns)
        shown = min(e.d_k, EXPLAIN_COLUMNS)
        return ExplainResponse(
            translation=trace.translation,
            kind=e.kind,
            title=KIND_TITLES[e.kind],
            layer=e.layer,
            head=e.head,
            n_heads=e.n_heads,
            query_tokens=e.query_tokens,
            key_tokens=e.key_tokens,
            shapes=Shapes(T=len(rows), S=len(columns), d_model=e.d_model, d_k=e.d_k),
            d_k=e.d_k,
            sqrt_dk=math.sqrt(e.d_k),
            has_bias=e.has_bias,
            causal=e.kind == "decoder",
            scores=_rows(e.scores),
            scaled_scores=_rows(e.scaled_scores),
            weights=_rows(e.weights),
            output=_rows(e.output[:, :shown]),
            output_columns=shown,
            row_sentences=[e.row_sentence(row, ROW_SENTENCE_KEYS) for row in range(len(rows))],
        )

    @app.post(
        "/api/context",
        response_model=ContextResponse,
        responses=ERRORS,
        summary="One word's vector in several sentences, compared layer by layer",
    )
    def context(request: ContextRequest) -> ContextResponse:
        if not 2 <= len(request.sentences) <= max_sentences_context:
            raise HTTPException(
                422, f"give 2 to {max_sentences_context} sentences that share the word (got {len(request.sentences)})"
            )
        sentences = [sentence(s, f"sentence {i + 1}") for i, s in enumerate(request.sentences)]
        word = request.word.strip()
        if not word:
            raise HTTPException(422, "word is empty: type the word the sentences share")
        if len(word) > max_chars:
            raise HTTPException(422, f"word is {len(word)} characters long; the limit is {max_chars} characters")
        try:
            with lock:
                report = compare_contexts(translator.model, translator.tokenizer, sentences, word)
        except ValueError as error:  # the word is not in a sentence: find_word names the words there are
            raise HTTPException(422, str(error)) from None
        return ContextResponse(
            word=word,
            layer_names=report.layer_names,
            similarity=report.similarity.tolist(),
            found=[w.word for w in report.words],
            pieces=[w.pieces for w in report.words],
            positions=[w.position for w in report.words],
            neighbours=[[Neighbour(piece=p, cosine=c) for p, c in near] for near in report.neighbours],
        )

    add_learning_routes(app, translator, lock, sentence, ERRORS)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> Response:
        return _asset(assets["index.html"])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        # Only the files found in static/ at start-up, by exact name: nothing else on disk is reachable.
        if name not in assets:
            raise HTTPException(404, "no such file")
        return _asset(assets[name])

    return app


def _layers(config: ModelConfig, kind: AttentionKind) -> int:
    return config.encoder_layers if kind == "encoder" else config.decoder_layers


def _rows(matrix: Tensor, digits: int | None = None) -> list[list[float]]:
    rows = matrix.float().cpu().tolist()
    if digits is None:
        return [[float(v) for v in row] for row in rows]
    return [[round(float(v), digits) for v in row] for row in rows]


def _asset(path: Path) -> Response:
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix], headers=PAGE_HEADERS)


async def _unusable_text(request: Request, error: Exception) -> JSONResponse:
    """Text the model cannot take (empty, over a limit, not valid Unicode): 422 with the check's message."""
    return JSONResponse({"detail": str(error)}, status_code=422)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's validation errors as one readable sentence (the list stays under ``errors``)."""
    assert isinstance(error, RequestValidationError)
    problems = []
    for problem in error.errors():
        if problem.get("type") == "json_invalid":
            reason = problem.get("ctx", {}).get("error", "")
            problems.append(
                f"the request body is not valid JSON ({reason})" if reason else "the request body is not valid JSON"
            )
            continue
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "request body"
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    errors = [
        {"loc": [str(p) for p in problem.get("loc", ())], "msg": str(problem.get("msg"))} for problem in error.errors()
    ]
    return JSONResponse({"detail": "; ".join(problems) or "invalid request", "errors": errors}, status_code=422)


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes // 1024} KiB"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
