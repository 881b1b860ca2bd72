"""Text in, text out around any way of decoding a batch: tokenise, batch by length, decode, detokenise.

:class:`TextTranslator` is what every translator shares and what needs no PyTorch: the input's
checks (Unicode, the model's length limit, long texts split into sentences), batches of
similar length, decoding workers (forked processes, :mod:`selfattention.engine.workers`), the
order restored. How a batch of token ids is decoded is a subclass's
:meth:`~TextTranslator.translate_ids`: :class:`~selfattention.decoding.Translator` runs the
PyTorch model (with the engine's C step where it applies), and
:class:`~selfattention.decoding.c_translator.CTranslator` runs the engine's C model alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfattention.data.tokenizer import TOKENIZER_FILE, SubwordTokenizer
from selfattention.decoding.sentences import check_pieces, check_unicode, max_source_pieces, split_sentences
from selfattention.engine.workers import DecodingPool
from selfattention.model_files import ModelFileError


@dataclass(frozen=True)
class DecodingConfig:
    """How to search: beam size 1 is greedy."""

    beam_size: int = 4
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 32


def check_vocabulary(directory: Path, tokenizer: SubwordTokenizer, vocab_size: int) -> None:
    """Refuse a tokenizer whose vocabulary is not the model's (another run's, or a damaged file): its
    ids would index the wrong embeddings, or none at all."""
    if tokenizer.vocab_size != vocab_size:
        single_file = directory / TOKENIZER_FILE  # an imported Marian pair has several
        raise ModelFileError(
            single_file if single_file.is_file() else directory,
            f"the tokenizer has {tokenizer.vocab_size} pieces, but config.json's vocab_size is {vocab_size}: "
            "it belongs to another model",
        )


class TextTranslator:
    """A tokenizer and a way to decode batches of its ids, ready to translate text.

    ``max_positions``: the model's positions; the longest input (and output) is one less, for EOS.
    """

    def __init__(self, tokenizer: SubwordTokenizer, pad_id: int, bos_id: int, eos_id: int, max_positions: int) -> None:
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.max_positions = max_positions
        self.pool: DecodingPool | None = None

    def translate_ids(self, sources: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        """Target ids for already tokenised sources (no BOS/EOS in or out)."""
        raise NotImplementedError

    def _before_workers(self) -> None:
        """What must be ready before the workers fork, so that they share it (packed weights); may refuse."""

    def start_workers(self, workers: int) -> None:
        """Decode batches in ``workers`` forked processes of one thread each (1: in this process).

        On a CPU, two processes of one thread each are faster than one of two threads
        (:mod:`selfattention.engine.workers`). The translations are the same either way.
        """
        self.stop_workers()
        if workers > 1:
            self._before_workers()
            self.pool = DecodingPool(self.translate_ids, workers)

    def stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def translate(
        self,
        texts: Sequence[str],
        config: DecodingConfig | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        split_long: bool = False,
    ) -> list[str]:
        """Translate each text; empty texts give empty translations.

        A text longer than :attr:`max_source_length` pieces is refused with an :class:`InputError`
        naming the limit, unless ``split_long``: then it is split into sentences
        (:func:`split_sentences`), each sentence is translated, and the translations are joined
        with spaces, in order. A single sentence over the limit is refused either way. ``progress``
        is called with the number of texts finished.
        """
        config = config or DecodingConfig()
        segments, owners = self._segments(texts, split_long)
        pieces: list[list[tuple[int, str]]] = [[] for _ in texts]  # per text: (segment, its translation)
        per_text = Counter(owners)
        remaining = [per_text[i] for i in range(len(texts))]
        if progress is not None and 0 in remaining:
            progress(remaining.count(0))  # empty inputs are done at once
        order = sorted(range(len(segments)), key=lambda s: len(segments[s]))
        chunks = [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]
        batches = [[segments[s] for s in chunk] for chunk in chunks]
        if self.pool is not None and len(batches) > 1:
            decoded = self.pool.map(batches, config)
        else:
            decoded = (self.translate_ids(batch, config) for batch in batches)
        for chunk, outputs in zip(chunks, decoded, strict=True):
            finished = 0
            for s, tokens in zip(chunk, outputs, strict=True):
                pieces[owners[s]].append((s, self.tokenizer.decode(tokens)))
                remaining[owners[s]] -= 1
                finished += remaining[owners[s]] == 0
            if progress is not None and finished:
                progress(finished)
        return [" ".join(text for _, text in sorted(done) if text) for done in pieces]

    def batch_count(self, texts: Sequence[str], config: DecodingConfig, *, split_long: bool = False) -> int:
        """How many batches :meth:`translate` decodes ``texts`` in: ``config.batch_size`` segments a batch.

        The segments are the non-empty texts (with ``split_long``, a long one's sentences).
        Refuses what :meth:`translate` refuses, with the same :class:`InputError`.
        """
        return -(-len(self._segments(texts, split_long)[0]) // config.batch_size)

    def _segments(self, texts: Sequence[str], split_long: bool) -> tuple[list[list[int]], list[int]]:
        """What the model translates, as pieces (whole texts, or the sentences of long ones), and the text of each."""
        for number, text in enumerate(texts, start=1):
            check_unicode(text, f"input {number}")
        limit = self.max_source_length
        segments: list[list[int]] = []
        owners: list[int] = []  # the text each segment belongs to
        for i, ids in enumerate(self.tokenizer.encode_batch([text.strip() for text in texts])):
            what, parts = f"input {i + 1}", [ids]
            if split_long and len(ids) > limit:
                what, parts = f"a sentence of input {i + 1}", self.tokenizer.encode_batch(split_sentences(texts[i]))
            for part in parts:
                check_pieces(part, limit, what)
                if part:
                    segments.append(part)
                    owners.append(i)
        return segments, owners

    @property
    def max_source_length(self) -> int:
        """The longest input (and output) in pieces: the model's positions, less one for EOS."""
        return max_source_pieces(self.max_positions)


__all__ = ["DecodingConfig", "TextTranslator", "check_vocabulary"]
