"""The API of the page's two learning views: watch it translate, and why "il" and not "elle".

``POST /api/watch`` gives the decoding step by step (:func:`selfattention.inspection.watch.watch_translation`):
at each step the token read and written, the top k of the output softmax, that step's
cross-attention (every layer and head) and the beam's hypotheses with their scores.
``POST /api/contrast`` compares two sentences that differ in one word
(:func:`selfattention.inspection.contrast.contrast`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection.contrast import contrast
from selfattention.inspection.watch import Hypothesis, watch_translation

MAX_TOP = 10
TEXT = "The English sentence (not empty; at most the server's character limit, see GET /api/model)."
BEAM = "Beam size of the search; 1 is greedy search."


class WatchRequest(BaseModel):
    text: str = Field(description=TEXT, examples=["A dog ate the food because it was hungry."])
    beam: int = Field(4, ge=1, le=8, description=BEAM)
    top: int = Field(5, ge=1, le=MAX_TOP, description="How many of the likeliest next tokens to give per step.")


class Candidate(BaseModel):
    piece: str = Field(description="A vocabulary piece (## continues a word, ␣ starts one).")
    probability: float = Field(description="Its probability at this step, from the output softmax.")


class HypothesisOut(BaseModel):
    text: str = Field(description="The hypothesis as text.")
    pieces: list[str] = Field(description="Its pieces; a finished one ends with </s>.")
    log_prob: float = Field(description="The sum of its pieces' log-probabilities.")
    score: float = Field(description="What the search ranks by: log_prob, divided by length ** penalty once finished.")
    finished: bool = Field(description="Whether it has ended (written </s>).")


class WatchStepOut(BaseModel):
    reads: str = Field(description="The token the decoder reads at this step (<s> first).")
    writes: str = Field(description="The token the translation writes at this step (</s> last).")
    probability: float = Field(description="The probability of the token written.")
    top: list[Candidate] = Field(description="The likeliest next tokens, likeliest first.")
    cross: list[list[list[float]]] = Field(
        description="Layers x heads x source pieces: this step's cross-attention; each head's row sums to 1."
    )
    beam: list[HypothesisOut] = Field(description="The hypotheses the beam keeps after this step, best first.")
    ended: list[HypothesisOut] = Field(description="The hypotheses set aside as finished at this step.")


class WatchResponse(BaseModel):
    translation: str = Field(description="The translation the search gives.")
    source_tokens: list[str] = Field(description="The English pieces, ending with </s>: the columns of `cross`.")
    beam: int = Field(description="The beam size used.")
    search_steps: int = Field(description="Steps the search ran (it may go on past the best translation's end).")
    steps: list[WatchStepOut] = Field(description="One per token of the translation, </s> included.")


class ContrastRequest(BaseModel):
    sentences: list[str] = Field(
        description="Two sentences that differ in a word, each with the pronoun.",
        examples=[["The dog ate the soup because it was hungry.", "The dog ate the soup because it was delicious."]],
    )
    pronoun: str = Field("it", description="The English pronoun to follow.")
    antecedents: list[str] | None = Field(
        None, description="The two words it may refer to (default: the nouns after a determiner before it)."
    )
    choices: list[str] = Field(["il", "elle"], description="The French pieces to compare at the pronoun's step.")
    beam: int = Field(4, ge=1, le=8, description=BEAM)


class PronounStepOut(BaseModel):
    index: int | None = Field(description="The step that writes the pronoun; null when no choice is written.")
    written: str | None = Field(description="The choice written there.")
    probabilities: dict[str, float] = Field(description="Each choice's probability at that step.")


class HeadShiftOut(BaseModel):
    layer: int
    head: int
    first: list[float] = Field(description="Sentence 1: attention from the pronoun to antecedent 1, to antecedent 2.")
    second: list[float] = Field(description="Sentence 2: the same.")
    shift: float = Field(
        description="(1 − 2 in sentence 1) − (1 − 2 in sentence 2): how far the head's attention moves."
    )


class ContrastResponse(BaseModel):
    sentences: list[str]
    translations: list[str]
    pronoun: str
    antecedents: list[str]
    choices: list[str]
    steps: list[PronounStepOut] = Field(description="Per sentence, the pronoun's step and the choices' probabilities.")
    heads: list[HeadShiftOut] = Field(description="Every encoder layer and head, the largest shift first.")


def _hypothesis(h: Hypothesis) -> HypothesisOut:
    return HypothesisOut(text=h.text, pieces=h.pieces, log_prob=h.log_prob, score=h.score, finished=h.finished)


def add_learning_routes(
    app: FastAPI,
    translator: Translator,
    lock: threading.Lock,
    sentence: Callable[[str, str], str],
    errors: dict[int | str, dict[str, object]],
) -> None:
    """``/api/watch`` and ``/api/contrast`` on ``app``; ``sentence(text, what)`` checks a sentence."""

    @app.post("/api/watch", response_model=WatchResponse, responses=errors, summary="The decoding, step by step")
    def watch(request: WatchRequest) -> WatchResponse:
        text = sentence(request.text, "text")
        with lock:
            watched = watch_translation(
                translator.model, translator.tokenizer, text, DecodingConfig(beam_size=request.beam), top_k=request.top
            )
        return WatchResponse(
            translation=watched.translation,
            source_tokens=watched.source_labels,
            beam=watched.beam_size,
            search_steps=watched.search_steps,
            steps=[
                WatchStepOut(
                    reads=step.reads,
                    writes=step.writes,
                    probability=step.written_probability,
                    top=[Candidate(piece=piece, probability=p) for piece, p in step.top],
                    cross=step.cross.tolist(),
                    beam=[_hypothesis(h) for h in step.beam],
                    ended=[_hypothesis(h) for h in step.ended],
                )
                for step in watched.steps
            ],
        )

    @app.post(
        "/api/contrast",
        response_model=ContrastResponse,
        responses=errors,
        summary='Two sentences that differ in one word: why "il" and not "elle"',
    )
    def compare_pronouns(request: ContrastRequest) -> ContrastResponse:
        if len(request.sentences) != 2:
            raise HTTPException(422, f"give exactly 2 sentences, got {len(request.sentences)}")
        first, second = (sentence(s, f"sentence {i + 1}") for i, s in enumerate(request.sentences))
        pronoun = request.pronoun.strip()
        if not pronoun:
            raise HTTPException(422, "pronoun is empty: type the word to follow (e.g. it)")
        antecedents = None
        if request.antecedents is not None:
            antecedents = [word.strip() for word in request.antecedents]
            if len(antecedents) != 2 or not all(antecedents):
                raise HTTPException(422, "give two antecedents, the words the pronoun may refer to (e.g. dog, soup)")
        choices = [choice.strip() for choice in request.choices if choice.strip()]
        try:
            with lock:
                result = contrast(
                    translator,
                    first,
                    second,
                    pronoun=pronoun,
                    antecedents=antecedents,
                    choices=choices,
                    decoding=DecodingConfig(beam_size=request.beam),
                )
        except ValueError as error:  # a word missing from a sentence: the message names the words there are
            raise HTTPException(422, str(error)) from None
        return ContrastResponse(
            sentences=list(result.sentences),
            translations=list(result.translations),
            pronoun=result.pronoun,
            antecedents=list(result.antecedents),
            choices=list(result.choices),
            steps=[
                PronounStepOut(index=s.index, written=s.written, probabilities=s.probabilities) for s in result.steps
            ],
            heads=[
                HeadShiftOut(layer=h.layer, head=h.head, first=list(h.first), second=list(h.second), shift=h.shift)
                for h in result.heads
            ],
        )
