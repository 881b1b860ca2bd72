"""The tokenizer of Hugging Face Marian models (opus-mt): two SentencePiece models and one vocabulary.

A Marian model directory holds ``source.spm`` (segments the source language), ``target.spm``
(segments the target language) and ``vocab.json``, which maps every piece of either side to the
model's id. Unlike this project's joint ``tokenizer.model``, the SentencePiece models' own ids
mean nothing: text is cut into pieces by the side's model and the pieces are looked up in the
vocabulary (a piece that is not there is ``<unk>``). There is no start token; ``</s>`` ends a
sentence and ``<pad>`` pads (and starts the decoder).

This reads those files without ``transformers`` and behaves as ``MarianTokenizer`` does: the
tests hold the ids and texts equal. It lives beside the joint tokenizer, below the decoding
layer, so that :meth:`Translator.load` can pick whichever a model directory holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from selfattention.data.casing import has_case_marker, mark_capitals, restore_capitals
from selfattention.data.tokenizer import (
    EOS_ID,
    PAD_ID,
    UNK_ID,
    WORD_START,
    SubwordTokenizer,
    Tokenizer,
    TokenizerError,
)
from selfattention.model_files import atomic_write

SOURCE_SPM = "source.spm"
TARGET_SPM = "target.spm"
VOCAB_FILE = "vocab.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
TARGET_VOCAB_FILE = "target_vocab.json"


class MarianTokenizerAdapter:
    """Source and target SentencePiece models plus the shared piece-to-id vocabulary."""

    def __init__(
        self,
        source_proto: bytes,
        target_proto: bytes,
        vocab: dict[str, int],
        *,
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        settings: dict[str, Any] | None = None,
        origin: str = "<memory>",
    ) -> None:
        self._source = _processor(source_proto, f"{origin}/{SOURCE_SPM}")
        self._target = _processor(target_proto, f"{origin}/{TARGET_SPM}")
        self._protos = (source_proto, target_proto)
        # A vocabulary with the case marker (data/casing.py) marks capitals on the side it cuts, and
        # decoding restores them: our joint tokenizer written as a Marian pair translates as before.
        self._marks = (has_case_marker(self._source), has_case_marker(self._target))
        for token in (eos_token, unk_token, pad_token):
            if token not in vocab:
                raise TokenizerError(f"{origin}/{VOCAB_FILE}: the vocabulary has no {token!r}")
        self.vocab = dict(vocab)
        self.id_to_piece = {index: piece for piece, index in self.vocab.items()}
        self.eos_id, self.unk_id, self.pad_id = vocab[eos_token], vocab[unk_token], vocab[pad_token]
        self.special_tokens = {eos_token, unk_token, pad_token}
        self.settings = {
            **(settings or {}),
            "eos_token": eos_token,
            "unk_token": unk_token,
            "pad_token": pad_token,
        }

    @classmethod
    def load(cls, directory: Path | str) -> MarianTokenizerAdapter:
        """Read ``source.spm``, ``target.spm``, ``vocab.json`` and, if present, ``tokenizer_config.json``."""
        directory = Path(directory)
        settings = _read_json(directory / TOKENIZER_CONFIG) if (directory / TOKENIZER_CONFIG).is_file() else {}
        if not isinstance(settings, dict):
            raise TokenizerError(f"{directory / TOKENIZER_CONFIG}: expected a JSON object")
        if settings.get("separate_vocabs") or (directory / TARGET_VOCAB_FILE).is_file():
            raise TokenizerError(
                f"{directory}: separate source and target vocabularies are not supported (one vocab.json only)"
            )
        vocab = _read_json(directory / VOCAB_FILE)
        if not isinstance(vocab, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in vocab.items()
        ):
            raise TokenizerError(f"{directory / VOCAB_FILE}: expected a JSON object mapping pieces to integer ids")
        protos = []
        for name in (SOURCE_SPM, TARGET_SPM):
            path = directory / name
            if not path.is_file():
                raise TokenizerError(f"{path}: no such file (a Marian tokenizer needs {SOURCE_SPM} and {TARGET_SPM})")
            protos.append(path.read_bytes())
        tokens = {key: _token_text(settings.get(key), default) for key, default in _SPECIAL_DEFAULTS.items()}
        kept = {key: settings[key] for key in ("source_lang", "target_lang", "model_max_length") if key in settings}
        return cls(protos[0], protos[1], vocab, settings=kept, origin=str(directory), **tokens)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> MarianTokenizerAdapter:
        """This project's joint tokenizer as a Marian pair: the same model on both sides, the same ids."""
        proto = tokenizer.model_proto
        pieces = tokenizer.pieces(range(tokenizer.vocab_size))
        vocab = {piece: index for index, piece in enumerate(pieces)}
        if len(vocab) != tokenizer.vocab_size:
            raise TokenizerError("the tokenizer has duplicate pieces; it cannot be written as a Marian vocabulary")
        return cls(proto, proto, vocab, eos_token=pieces[EOS_ID], unk_token=pieces[UNK_ID], pad_token=pieces[PAD_ID])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Ids of a source sentence, without ``</s>`` (a leading ``>>fr<<`` language code is kept whole)."""
        return self._encode(text, self._source, self._marks[0])

    def encode_target(self, text: str) -> list[int]:
        """Ids of a target sentence, cut by the target model."""
        return self._encode(text, self._target, self._marks[1])

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        """Target text of the ids; ``</s>``, ``<pad>`` and ``<unk>`` are dropped, as Marian does."""
        pieces = [piece for piece in self.pieces(ids) if piece not in self.special_tokens]
        text = str(self._target.decode_pieces(pieces)).replace(WORD_START, " ").strip()
        return restore_capitals(text) if self._marks[1] else text

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._piece(int(i)) for i in ids]

    def piece_id(self, piece: str) -> int:
        return self.vocab.get(piece, self.unk_id)

    def save(self, path: Path | str) -> Path:
        """Write ``source.spm``, ``target.spm``, ``vocab.json`` and ``tokenizer_config.json`` into a directory."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        settings = {"tokenizer_class": "MarianTokenizer", "separate_vocabs": False, **self.settings}
        _write(directory / SOURCE_SPM, self._protos[0])
        _write(directory / TARGET_SPM, self._protos[1])
        _write(directory / VOCAB_FILE, (json.dumps(self.vocab, indent=2, ensure_ascii=False) + "\n").encode())
        _write(directory / TOKENIZER_CONFIG, (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode())
        return directory

    def _encode(self, text: str, processor: spm.SentencePieceProcessor, marks: bool) -> list[int]:
        code: list[str] = []
        if text.startswith(">>") and (end := text.find("<<")) != -1:
            code, text = [text[: end + 2]], text[end + 2 :]
        if marks:
            text = mark_capitals(text)
        pieces = [*code, *processor.encode(text, out_type=str)]
        return [self.vocab.get(piece, self.unk_id) for piece in pieces]

    def _piece(self, index: int) -> str:
        if index in self.id_to_piece:
            return self.id_to_piece[index]
        piece = self._target.id_to_piece(index) if 0 <= index < self._target.get_piece_size() else ""
        return str(piece) or self.settings["unk_token"]


def is_marian_tokenizer_dir(directory: Path | str) -> bool:
    """Whether a directory holds a Marian tokenizer (``vocab.json`` and ``source.spm``)."""
    directory = Path(directory)
    return (directory / VOCAB_FILE).is_file() and (directory / SOURCE_SPM).is_file()


def load_tokenizer(directory: Path | str) -> SubwordTokenizer:
    """The tokenizer of a model directory: a Marian pair if it holds one, else ``tokenizer.model``."""
    if is_marian_tokenizer_dir(directory):
        return MarianTokenizerAdapter.load(directory)
    return Tokenizer.load(directory)


_SPECIAL_DEFAULTS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


def _token_text(value: Any, default: str) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an object with "content"."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else default


def _processor(proto: bytes, origin: str) -> spm.SentencePieceProcessor:
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(proto)
    except Exception as error:  # sentencepiece raises plain RuntimeError/OSError
        raise TokenizerError(f"{origin}: not a SentencePiece model ({error})") from None
    return processor


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise TokenizerError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TokenizerError(f"{path}: not readable JSON ({error})") from None


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
