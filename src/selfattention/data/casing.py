"""Inline case markers: an ALL-CAPITALS word becomes its lower-case form followed by ``⇪``.

A subword vocabulary learned mostly from lower-case text has few pieces for capitals, so
"DO YOU KNOW THIS SONG?" falls apart into single letters. Writing each all-capitals word in lower
case with a marker after it ("do⇪ you⇪ know⇪ this⇪ song⇪?") lets the word keep its usual pieces;
the model learns to copy the marker, and decoding upper-cases the word before each marker again.
This is the inline casing of Berard et al. 2019 (Naver Labs' WMT19 system) and of Marian's case
factors, simplified to one marker: single capitals ("I", "À") and mixed case ("iPhone") stay as
they are.

``⇪`` is a user-defined piece of the SentencePiece vocabulary, so it is always cut out as a piece
of its own, also after the last piece of a word ("market⇪" → ``▁market`` ``⇪``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sentencepiece as spm

CASE_MARKER = "⇪"  # U+21EA CAPS LOCK
_LETTERS = r"[^\W\d_]+"  # a run of Unicode letters: word characters that are neither digits nor "_"
_LETTER_RUN = re.compile(_LETTERS)
_MARKED_WORD = re.compile(f"({_LETTERS}){CASE_MARKER}+")
# A marker after no letter, with the spaces around it: what is left of it is at most one space.
_STRAY_MARKER = re.compile(f" *{CASE_MARKER}[{CASE_MARKER} ]*")


def mark_capitals(text: str) -> str:
    """Every all-capitals run of two or more letters lower-cased and followed by the marker.

    Markers already in the text are removed first, so that an input cannot fake one, and the text
    is put in NFKC form (as SentencePiece's normaliser would), so that an accent written as a
    combining mark ("E" + U+0301) is part of its letter's run. A run whose lower case does not
    upper-case back to it (such as "ẞ", "İ") is left as it is, so that :func:`restore_capitals`
    gives the (NFKC) text back.
    """
    return _LETTER_RUN.sub(_mark_run, unicodedata.normalize("NFKC", text.replace(CASE_MARKER, "")))


def _mark_run(match: re.Match[str]) -> str:
    run = match.group()
    lowered = run.lower()
    if len(run) < 2 or not run.isupper() or lowered.upper() != run or not _LETTER_RUN.fullmatch(lowered):
        return run
    return lowered + CASE_MARKER


def restore_capitals(text: str) -> str:
    """The inverse of :func:`mark_capitals`: the letters before each marker upper-cased, markers dropped.

    A marker that follows no letter (as a model may write one: after a space, at the start, after
    punctuation) is dropped too, leaving no double space behind.
    """
    text = _MARKED_WORD.sub(lambda match: match.group(1).upper(), text)
    return _STRAY_MARKER.sub(lambda match: _stray_replacement(match, len(text)), text)


def _stray_replacement(match: re.Match[str], length: int) -> str:
    inner = match.start() > 0 and match.end() < length  # neither at the start nor at the end
    return " " if inner and " " in match.group() else ""


def add_case_marker(model_proto: bytes) -> bytes:
    """A SentencePiece model with the marker appended as a user-defined piece, every other id unchanged.

    The marker's id is the old vocabulary size; the model's training record (``trainer_spec``) says
    so too. Its embedding is new: a model trained on the old vocabulary must learn it
    (fine-tuning) before it writes markers.
    """
    ModelProto = _model_proto_message()
    model = ModelProto.FromString(model_proto)
    if any(piece.piece == CASE_MARKER for piece in model.pieces):
        raise ValueError(f"the SentencePiece model already has the case marker {CASE_MARKER!r} as a piece")
    model.pieces.add(piece=CASE_MARKER, score=0.0, type=ModelProto.SentencePiece.USER_DEFINED)
    model.trainer_spec.vocab_size = len(model.pieces)
    model.trainer_spec.user_defined_symbols.append(CASE_MARKER)
    return bytes(model.SerializeToString())


def has_case_marker(processor: spm.SentencePieceProcessor) -> bool:
    """Whether a loaded SentencePiece model has the marker as a user-defined piece.

    Read through the processor, without parsing the model file (which needs protobuf): a
    user-defined piece scores exactly 0, where a piece learned from text (a corpus that happens to
    hold the character) scores below 0.
    """
    index = processor.piece_to_id(CASE_MARKER)
    if index == processor.unk_id() or processor.is_control(index) or processor.is_unknown(index):
        return False
    return processor.id_to_piece(index) == CASE_MARKER and processor.get_score(index) == 0.0


def _model_proto_message() -> Any:
    """SentencePiece's ``ModelProto`` message (imported here: it needs protobuf, which only adding the marker needs)."""
    from sentencepiece import sentencepiece_model_pb2

    return sentencepiece_model_pb2.ModelProto  # type: ignore[attr-defined]  # made by protobuf at import
