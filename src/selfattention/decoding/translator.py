"""Text in, text out: tokenise, batch by length, search, detokenise, restore the order.

This is where the engine is chosen for translation (:func:`start_step`): the C decoding step of
:mod:`selfattention.engine.native_step` where it applies, else ``Transformer.decode``. Loading
also lays float32 weights out for oneDNN (:func:`~selfattention.engine.packed.pack_linears`), or
quantises them to the engine's int8 (:mod:`~selfattention.engine.quantize`), all but those the C
step packs for itself; :meth:`Translator.start_workers` forks decoding processes. With the engine
switched off (``SELFATTENTION_NATIVE=0``) the search runs ``Transformer.decode`` on unpacked weights. One translator may translate for several threads
at once (a web server's clients): each search keeps its own state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from selfattention.data.batching import collate, make_example
from selfattention.data.marian_tokenizer import load_tokenizer
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TOKENIZER_FILE, SubwordTokenizer
from selfattention.decoding.sentences import check_pieces, check_unicode, max_source_pieces, split_sentences
from selfattention.engine import native_step
from selfattention.engine.packed import pack_linears
from selfattention.engine.quantize import PRECISIONS, check_precision, pack_int8_linears, with_precision
from selfattention.engine.workers import DecodingPool, WorkersError
from selfattention.model import Transformer
from selfattention.model_io import ModelFileError, load_model
from selfattention.search import SearchLimits, Step, TorchStep, beam_search, greedy_search


@dataclass(frozen=True)
class DecodingConfig:
    """How to search: beam size 1 is greedy."""

    beam_size: int = 4
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 32


def special_ids(model: Transformer) -> tuple[int, int, int]:
    """The model's padding, decoder-start and end ids (this project's 0, 1, 2 when it has no configuration)."""
    config = model.config
    return (PAD_ID, BOS_ID, EOS_ID) if config is None else (config.pad_id, config.bos_id, config.eos_id)


def start_step(model: Transformer, memory: Tensor, memory_mask: Tensor | None, rows: int, steps: int) -> Step:
    """The steps of one search: the engine's C step where it applies (float32 or int8 on the CPU,
    its library loaded, the engine on), else ``Transformer.decode``'s (:class:`~selfattention.search.TorchStep`)."""
    native = native_step.start(model, memory, memory_mask, rows, steps)
    return native if native is not None else TorchStep(model, memory, memory_mask)


def max_source_length(model: Transformer) -> int:
    """The longest input (and output) the model reads, in pieces (1023 when it has no configuration)."""
    config = model.config
    return max_source_pieces(config.max_positions if config is not None else 1024)


class Translator:
    """A model and its tokenizer, ready to translate sentences.

    The special ids come from the model's configuration: the decoder starts from ``bos_id``
    (an imported Marian model starts from its padding id) and stops at ``eos_id``.
    """

    def __init__(self, model: Transformer, tokenizer: SubwordTokenizer) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id = special_ids(model)
        self.pool: DecodingPool | None = None

    def start_workers(self, workers: int) -> None:
        """Decode batches in ``workers`` forked processes of one thread each (1: in this process).

        On a CPU, two processes of one thread each are faster than one of two threads
        (:mod:`selfattention.engine.workers`). The translations are the same either way.
        CPU models only: a :class:`WorkersError` says so for others.
        """
        self.stop_workers()
        if workers > 1:
            device = next(self.model.parameters()).device
            if device.type != "cpu":
                raise WorkersError(f"decoding workers run on the CPU only, and this model is on {device}")
            native_step.decoder_for(self.model)  # packed here, once: the forked workers share its pages
            self.pool = DecodingPool(self.translate_ids, workers)

    def stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    @classmethod
    def load(
        cls, directory: Path | str, device: str = "cpu", precision: str = "float32", *, onednn: bool = True
    ) -> Translator:
        """The model of a directory and its tokenizer (``tokenizer.model``, or an imported Marian pair).

        ``precision`` "int8" quantises the Linear layers (:func:`with_precision`; CPU only) and packs
        their weights for the engine's int8 product (:func:`pack_int8_linears`). At float32 on the
        CPU, ``onednn`` lays the Linear layers' weights out for oneDNN's faster products
        (:func:`pack_linears`; same results to float32 rounding, and off when the engine is
        switched off, ``SELFATTENTION_NATIVE=0``). Either way, all but those the C decoding step
        computes: it packs its own copy of them at the first search.

        A tokenizer whose vocabulary is not the model's (another run's, or a damaged file) is refused:
        its ids would index the wrong embeddings, or none at all.
        """
        check_precision(precision, device)
        directory = Path(directory)
        model, tokenizer = load_model(directory, device=device), load_tokenizer(directory)
        expected = model.config.vocab_size if model.config is not None else tokenizer.vocab_size
        if tokenizer.vocab_size != expected:
            single_file = directory / TOKENIZER_FILE  # an imported Marian pair has several
            raise ModelFileError(
                single_file if single_file.is_file() else directory,
                f"the tokenizer has {tokenizer.vocab_size} pieces, but config.json's vocab_size is {expected}: "
                "it belongs to another model",
            )
        model = with_precision(model, precision)
        if precision == "int8":
            pack_int8_linears(model, leave=native_step.computed_linears(model))
        elif onednn and torch.device(device).type == "cpu":
            pack_linears(model, leave=native_step.computed_linears(model))
        return cls(model, tokenizer)

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
        return max_source_length(self.model)

    def translate_ids(self, sources: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        """Target ids for already tokenised sources (no BOS/EOS in or out)."""
        device = next(self.model.parameters()).device
        examples = [make_example(s, [], self.eos_id) for s in sources]
        src = collate(examples, self.pad_id, self.bos_id, self.eos_id).src.to(device)
        limits = SearchLimits(config.max_len_a, config.max_len_b, hard_limit=self.max_source_length)
        with torch.inference_mode():
            if config.beam_size == 1:
                return greedy_search(self.model, src, self.bos_id, self.eos_id, limits, start_step=start_step)
            return beam_search(
                self.model,
                src,
                self.bos_id,
                self.eos_id,
                config.beam_size,
                config.length_penalty,
                limits,
                start_step=start_step,
            )


__all__ = [
    "PRECISIONS",
    "DecodingConfig",
    "Translator",
    "WorkersError",
    "max_source_length",
    "special_ids",
    "start_step",
]
