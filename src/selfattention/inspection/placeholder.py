"""A stand-in until a trained model is installed: random weights of the seeds' sizes.

The seeds' sizes are the paper's base model: d_model 512, 8 heads of d_k 64, 6 + 6 layers. Its
weights are random (seeded), so its attention patterns show the mechanics, not meaning. Words
are split on spaces and punctuation and mapped to ids by a stable hash of the word.
"""

from __future__ import annotations

import re
import zlib

import torch

from selfattention.config import ModelConfig
from selfattention.model import Transformer, build_model

PLACEHOLDER_VOCAB = 8000
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def placeholder_model(seed: int = 0) -> Transformer:
    """A seeded random Transformer of the paper's base size, in eval mode."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_model(ModelConfig(vocab_size=PLACEHOLDER_VOCAB, dropout=0.0))
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def split_words(text: str) -> list[str]:
    """Words and punctuation marks, in order; control and zero-width characters dropped (the tokenizer drops them)."""
    return [word for word in _WORD.findall(text) if word.isprintable()]


def word_ids(words: list[str]) -> torch.Tensor:
    """A stable id per word (ids 0-2 are reserved for padding, start and end), as ``(1, L)``."""
    reserved = 3
    ids = [reserved + zlib.crc32(word.encode("utf-8")) % (PLACEHOLDER_VOCAB - reserved) for word in words]
    return torch.tensor([ids], dtype=torch.long)
