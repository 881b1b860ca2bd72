"""A joint English-French subword vocabulary (SentencePiece, unigram model).

Why SentencePiece: it reads and writes raw text, so detokenising needs no rules (apostrophes,
accents and French spacing before « ? ! : » come back as the training text writes them, with no
Moses rules to undo; its NFKC normalisation does turn no-break and thin spaces into plain ones); one model covers both languages, which lets the source embedding, target
embedding and output projection be one matrix; and it is the format Marian and the opus-mt
models use, so models move between this project and Hugging Face without a vocabulary
conversion.

Ids 0-3 are fixed: 0 padding, 1 start of sentence, 2 end of sentence, 3 unknown.

A vocabulary with the case marker ``⇪`` as a user-defined piece (data/casing.py) marks capitals:
"THE DOG" is cut as "the⇪ dog⇪", and decoding writes "THE DOG" again. One without it cuts text as
it is.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import sentencepiece as spm

from selfattention.data.casing import CASE_MARKER, add_case_marker, has_case_marker, mark_capitals, restore_capitals
from selfattention.model_files import atomic_write

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
TOKENIZER_FILE = "tokenizer.model"
WORD_START = "▁"


class TokenizerError(ValueError):
    """A tokenizer file is missing or unreadable."""


class SubwordTokenizer(Protocol):
    """What translation and inspection need from a tokenizer: this joint one or an imported pair.

    Ids come without start or end markers; the model's configuration says which ids those are.
    """

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]:
        """Ids of a source sentence."""
        ...

    def encode_target(self, text: str) -> list[int]:
        """Ids of a target sentence (a tokenizer pair has its own model for that side)."""
        ...

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Sequence[int]) -> str:
        """Target text of the ids, special ids dropped."""
        ...

    def pieces(self, ids: Sequence[int]) -> list[str]: ...

    def piece_id(self, piece: str) -> int:
        """The id of a vocabulary piece (the unknown piece's id when it is not in the vocabulary)."""
        ...

    def save(self, path: Path | str) -> Path: ...


class Tokenizer:
    """Text to subword ids and back."""

    def __init__(self, model_proto: bytes, source: str = "<memory>") -> None:
        self._processor = spm.SentencePieceProcessor()
        try:
            self._processor.LoadFromSerializedProto(model_proto)
        except Exception as error:  # sentencepiece raises plain RuntimeError/OSError
            raise TokenizerError(f"{source}: not a SentencePiece model ({error})") from None
        self._proto = model_proto
        self._marks_capitals = has_case_marker(self._processor)
        ids = (self._processor.pad_id(), self._processor.bos_id(), self._processor.eos_id(), self._processor.unk_id())
        if ids != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise TokenizerError(f"{source}: special ids are {ids}, expected pad 0, start 1, end 2, unknown 3")

    @classmethod
    def load(cls, path: Path | str) -> Tokenizer:
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        if not path.is_file():
            raise TokenizerError(f"{path}: no such file")
        return cls(path.read_bytes(), str(path))

    @classmethod
    def train(
        cls,
        sentences: Iterable[str],
        vocab_size: int = 8000,
        *,
        max_sentence_length: int = 4096,
        case_markers: bool = False,
    ) -> Tokenizer:
        """Learn a unigram vocabulary from the sentences of both languages.

        With ``case_markers``, from the sentences with their capitals marked, and with the marker as
        a user-defined piece (SentencePiece gives it id 4, after the special ids).
        """
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=(mark_capitals(s) for s in sentences) if case_markers else iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=max_sentence_length,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
            user_defined_symbols=[CASE_MARKER] if case_markers else [],  # [] trains the same model as no option
        )
        return cls(model.getvalue(), "<trained>")

    def with_case_marker(self) -> Tokenizer:
        """This vocabulary with the case marker as one more piece (the last id); every other id unchanged."""
        return Tokenizer(add_case_marker(self._proto), "<with case marker>")

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        atomic_write(path, lambda tmp: tmp.write_bytes(self._proto))
        return path

    @property
    def vocab_size(self) -> int:
        return int(self._processor.get_piece_size())

    @property
    def model_proto(self) -> bytes:
        """The serialised SentencePiece model, as ``tokenizer.model`` holds it."""
        return self._proto

    @property
    def marks_capitals(self) -> bool:
        """Whether the vocabulary has the case marker, so that capitals are marked (data/casing.py)."""
        return self._marks_capitals

    def encode(self, text: str) -> list[int]:
        """Subword ids of one sentence, without start or end markers."""
        return list(self._processor.encode(self._marked(text), out_type=int))

    def encode_target(self, text: str) -> list[int]:
        """The same as :meth:`encode`: one vocabulary serves both languages."""
        return self.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self._processor.encode([self._marked(t) for t in texts], out_type=int)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of the ids, special ids dropped (and capitals restored, when the vocabulary marks them)."""
        text = str(self._processor.decode([int(i) for i in ids if int(i) >= UNK_ID]))
        return restore_capitals(text) if self._marks_capitals else text

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """The subword pieces of the ids, as SentencePiece writes them (``▁`` starts a word)."""
        return [str(self._processor.id_to_piece(int(i))) for i in ids]

    def piece_id(self, piece: str) -> int:
        return int(self._processor.piece_to_id(piece))

    def _marked(self, text: str) -> str:
        return mark_capitals(text) if self._marks_capitals else text
