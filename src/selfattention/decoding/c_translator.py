"""Translating with the engine's C model alone: no PyTorch in the process.

:class:`CTranslator` is the text pipeline of
:class:`~selfattention.decoding.text_translator.TextTranslator` around the C model
(:class:`~selfattention.engine.c_model.CModel`: the encoder, the cross-attention keys and values
and each decoding step in the engine's kernels) and the numpy searches of
:mod:`selfattention.engine.c_search`. It reads the model directory with numpy
(:func:`~selfattention.model_files.read_arrays`, checked as PyTorch's loader checks it) and gives
the tokens PyTorch's searches with the C step give (tests hold them equal), without the second
and a half that ``import torch`` costs. ``selfattention translate`` uses it where it can
(:func:`open_translator`); the PyTorch :class:`~selfattention.decoding.Translator` does
everything else (another device, the engine switched off or not built, bfloat16 weights).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from selfattention.data.marian_tokenizer import load_tokenizer
from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding.text_translator import DecodingConfig, TextTranslator, check_vocabulary
from selfattention.engine import c_search, library, switched_off
from selfattention.engine.c_model import PRECISIONS, CModel, CModelError
from selfattention.model_files import (
    CONFIG_KEY,
    WEIGHTS_FILE,
    ModelFileError,
    NotForNumpy,
    check_saved_config,
    load_config,
    read_arrays,
)

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Why the C model cannot translate here (the caller falls back to PyTorch's translator)."""


class CTranslator(TextTranslator):
    """The C model of a model directory and its tokenizer, ready to translate sentences."""

    def __init__(self, model: CModel, tokenizer: SubwordTokenizer) -> None:
        config = model.config
        super().__init__(tokenizer, config.pad_id, config.bos_id, config.eos_id, config.max_positions)
        self.model = model

    @classmethod
    def load(cls, directory: Path | str, precision: str = "float32") -> CTranslator:
        """The model of ``directory`` packed for the C kernels, float32 or int8 (quantised as
        ``Translator.load(..., precision="int8")`` quantises it).

        Raises :class:`Unavailable` where the C model cannot run it (no engine library, the engine
        switched off, bfloat16 weights), and :class:`~selfattention.model_files.ModelFileError` for a
        directory that no translator could read.
        """
        if precision not in PRECISIONS:
            raise Unavailable(f"precision {precision!r}")
        if switched_off():
            raise Unavailable("the engine is switched off")
        loaded = library.load()
        if loaded is None:
            raise Unavailable(library.why_not())
        directory = Path(directory)
        if not directory.exists():
            raise ModelFileError(directory, "no such model directory")
        config = load_config(directory)
        tokenizer = load_tokenizer(directory)
        check_vocabulary(directory, tokenizer, config.vocab_size)
        path = directory / WEIGHTS_FILE
        try:
            arrays, metadata = read_arrays(path)
        except NotForNumpy as error:
            raise Unavailable(str(error)) from None
        check_saved_config(path, metadata.get(CONFIG_KEY), config)
        try:
            model = CModel(config, arrays, loaded.cdll, precision)
        except CModelError as error:
            raise ModelFileError(path, str(error)) from None
        return cls(model, tokenizer)

    def translate_ids(self, sources: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        """Target ids for already tokenised sources (no BOS/EOS in or out)."""
        if not sources:
            return []
        longest = max(len(s) for s in sources) + 1
        src = np.full((len(sources), longest), self.pad_id, dtype=np.int64)
        for row, ids in enumerate(sources):  # each source ends in EOS, as collate gives it
            src[row, : len(ids)] = ids
            src[row, len(ids)] = self.eos_id
        limits = c_search.max_lengths(src, self.pad_id, config.max_len_a, config.max_len_b, self.max_source_length)
        if config.beam_size == 1:
            return c_search.greedy(self.model, src, self.bos_id, self.eos_id, limits)
        return c_search.beam(self.model, src, self.bos_id, self.eos_id, config.beam_size, config.length_penalty, limits)


__all__ = ["CTranslator", "Unavailable"]
