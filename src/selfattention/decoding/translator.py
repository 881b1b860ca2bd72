"""The PyTorch model translating: :class:`Translator`, the text pipeline of
:class:`~selfattention.decoding.text_translator.TextTranslator` around greedy or beam search.

This is where the engine is chosen for translation (:func:`start_step`): the C decoding step of
:mod:`selfattention.engine.native_step` where it applies, else ``Transformer.decode``. Loading
also lays float32 weights out for oneDNN (:func:`~selfattention.engine.packed.pack_linears`), or
quantises them to the engine's int8 (:mod:`~selfattention.engine.quantize`), all but those the C
step packs for itself; :meth:`Translator.start_workers` forks decoding processes. With the engine
switched off (``SELFATTENTION_NATIVE=0``) the search runs ``Transformer.decode`` on unpacked weights. One translator may translate for several threads
at once (a web server's clients): each search keeps its own state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from selfattention.data.batching import collate, make_example
from selfattention.data.marian_tokenizer import load_tokenizer
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, SubwordTokenizer
from selfattention.decoding.sentences import max_source_pieces
from selfattention.decoding.text_translator import DecodingConfig, TextTranslator, check_vocabulary
from selfattention.engine import native_step
from selfattention.engine.packed import pack_linears
from selfattention.engine.quantize import PRECISIONS, check_precision, pack_int8_linears, with_precision
from selfattention.engine.workers import WorkersError
from selfattention.model import Transformer
from selfattention.model_io import load_model
from selfattention.search import SearchLimits, Step, TorchStep, beam_search, greedy_search


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


class Translator(TextTranslator):
    """A PyTorch model and its tokenizer, ready to translate sentences.

    The special ids come from the model's configuration: the decoder starts from ``bos_id``
    (an imported Marian model starts from its padding id) and stops at ``eos_id``.
    """

    def __init__(self, model: Transformer, tokenizer: SubwordTokenizer) -> None:
        self.model = model.eval()
        pad_id, bos_id, eos_id = special_ids(model)
        config = model.config
        super().__init__(tokenizer, pad_id, bos_id, eos_id, config.max_positions if config is not None else 1024)

    def _before_workers(self) -> None:
        """CPU models only (a :class:`WorkersError` says so for others); the C step's weights packed here,
        once: the forked workers share their pages."""
        device = next(self.model.parameters()).device
        if device.type != "cpu":
            raise WorkersError(f"decoding workers run on the CPU only, and this model is on {device}")
        native_step.decoder_for(self.model)

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
        check_vocabulary(directory, tokenizer, model.config.vocab_size if model.config else tokenizer.vocab_size)
        model = with_precision(model, precision)
        if precision == "int8":
            pack_int8_linears(model, leave=native_step.computed_linears(model))
        elif onednn and torch.device(device).type == "cpu":
            pack_linears(model, leave=native_step.computed_linears(model))
        return cls(model, tokenizer)

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
