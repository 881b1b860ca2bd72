"""Trace a real translation: every attention step of the model on one sentence.

The source is tokenised, translated (greedy or beam search), and the finished translation is
fed back through the model once with a :class:`TraceRecorder`. Teacher-forcing the finished
hypothesis gives exactly the attention the decoder used while producing it (cached decoding
equals a full pass; the tests hold that), and never a mix of beams.

``kinds`` and ``layers`` choose the attention calls kept (see :class:`TraceRecorder`): a trace of
one layer of a long input keeps one (B, H, T, S) matrix, and asking for encoder attention alone
runs the encoder alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from selfattention.data.tokenizer import BOS_ID, EOS_ID, SubwordTokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.sentences import check_pieces
from selfattention.decoding.translator import max_source_length, special_ids
from selfattention.inspection.notation import piece_label
from selfattention.inspection.recorder import AttentionKind, TraceRecorder
from selfattention.model import Transformer

SPECIAL_LABELS = {BOS_ID: "<s>", EOS_ID: "</s>"}


@dataclass(frozen=True)
class TranslationTrace:
    """A sentence, its translation, the token labels of both sides, and the recorded steps."""

    source: str
    translation: str
    source_ids: list[int]  # as the encoder saw them, ending with EOS
    target_ids: list[int]  # as the decoder saw them, starting with BOS
    source_labels: list[str]
    target_labels: list[str]
    recorder: TraceRecorder

    @property
    def produced_labels(self) -> list[str]:
        """What each decoder position produced: the translation's tokens, then ``</s>``.

        Decoder row i reads ``target_labels[i]`` and produces ``produced_labels[i]``.
        """
        return [*self.target_labels[1:], "</s>"]

    def labels(self, kind: AttentionKind) -> tuple[list[str], list[str]]:
        """Row (query) and column (key) labels for one kind of attention.

        A decoder row (decoder self-attention and cross-attention) is named by the token that step
        writes, as an alignment is read: the row "nourriture" is where the decoder, reading "la",
        looks while it writes "nourriture". Decoder self-attention's columns are what the decoder
        reads (``<s>`` and the tokens written so far), so a row never sees its own token.
        """
        if kind == "encoder":
            return self.source_labels, self.source_labels
        if kind == "decoder":
            return self.produced_labels, self.target_labels
        return self.produced_labels, self.source_labels


def special_labels(model: Transformer) -> dict[int, str]:
    """``<s>`` and ``</s>`` for the model's start and end ids (an imported Marian model starts from <pad>)."""
    _, bos_id, eos_id = special_ids(model)
    return {bos_id: "<s>", eos_id: "</s>"}


def token_labels(tokenizer: SubwordTokenizer, ids: list[int], specials: dict[int, str] | None = None) -> list[str]:
    """Readable labels (:func:`piece_label`), with ``specials`` for the start and end ids."""
    specials = SPECIAL_LABELS if specials is None else specials
    labels = []
    for token_id, piece in zip(ids, tokenizer.pieces(ids), strict=True):
        if token_id in specials:
            labels.append(specials[token_id])
        else:
            labels.append(piece_label(piece))
    return labels


def trace_ids(
    model: Transformer,
    source_ids: Sequence[int],
    target_ids: Sequence[int],
    *,
    kinds: Iterable[AttentionKind] | None = None,
    layers: Iterable[int] | None = None,
) -> TraceRecorder:
    """One teacher-forced pass over one sentence pair of ids, recording the chosen attention calls.

    With ``kinds`` encoder only, only the encoder runs (nothing of the decoder is recorded).
    """
    chosen = None if kinds is None else tuple(kinds)
    recorder = TraceRecorder(kinds=chosen, layers=layers)
    device = next(model.parameters()).device
    src = torch.tensor([list(source_ids)], device=device)
    with torch.inference_mode():
        if chosen is not None and set(chosen) <= {"encoder"}:
            model.encode(src, recorder=recorder)
        else:
            model(src, torch.tensor([list(target_ids)], device=device), recorder=recorder)
    return recorder


def trace_translation(
    model: Transformer,
    tokenizer: SubwordTokenizer,
    source: str,
    target: str | None = None,
    decoding: DecodingConfig | None = None,
    *,
    kinds: Iterable[AttentionKind] | None = None,
    layers: Iterable[int] | None = None,
) -> TranslationTrace:
    """Translate ``source`` (unless ``target`` is given) and record its attention steps.

    ``kinds`` and ``layers`` keep only those attention calls (all by default). Either side over
    the model's positions is refused (:class:`InputError`, naming the limit).
    """
    _, bos_id, eos_id = special_ids(model)
    limit = max_source_length(model)
    source_ids = [*tokenizer.encode(source), eos_id]
    check_pieces(source_ids[:-1], limit)
    if target is None:
        translator = Translator(model, tokenizer)
        config = decoding or DecodingConfig(beam_size=4)
        target_body = translator.translate_ids([source_ids[:-1]], config)[0]
    else:
        target_body = tokenizer.encode_target(target)
        check_pieces(target_body, limit, "the target side")
    target_ids = [bos_id, *target_body]
    recorder = trace_ids(model, source_ids, target_ids, kinds=kinds, layers=layers)
    return TranslationTrace(
        source=source,
        translation=tokenizer.decode(target_body),
        source_ids=source_ids,
        target_ids=target_ids,
        source_labels=token_labels(tokenizer, source_ids, special_labels(model)),
        target_labels=token_labels(tokenizer, target_ids, special_labels(model)),
        recorder=recorder,
    )
