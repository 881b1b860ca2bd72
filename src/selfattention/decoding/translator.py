"""Text in, text out: tokenise, batch by length, search, detokenise, restore the order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from selfattention.data.batching import collate, make_example
from selfattention.data.tokenizer import BOS_ID, EOS_ID, Tokenizer
from selfattention.decoding.beam import beam_search
from selfattention.decoding.greedy import greedy_search
from selfattention.decoding.search import SearchLimits
from selfattention.model import Transformer
from selfattention.model_io import load_model


@dataclass(frozen=True)
class DecodingConfig:
    """How to search: beam size 1 is greedy."""

    beam_size: int = 4
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    batch_size: int = 32


class Translator:
    """A model and its tokenizer, ready to translate sentences."""

    def __init__(self, model: Transformer, tokenizer: Tokenizer) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu") -> Translator:
        return cls(load_model(directory, device=device), Tokenizer.load(directory))

    def translate(
        self,
        texts: Sequence[str],
        config: DecodingConfig | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Translate each text; empty texts give empty translations."""
        config = config or DecodingConfig()
        ids = self.tokenizer.encode_batch([text.strip() for text in texts])
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        results: list[str] = [""] * len(texts)
        todo = [i for i in order if ids[i]]
        for start in range(0, len(todo), config.batch_size):
            chunk = todo[start : start + config.batch_size]
            for index, tokens in zip(chunk, self.translate_ids([ids[i] for i in chunk], config), strict=True):
                results[index] = self.tokenizer.decode(tokens)
            if progress is not None:
                progress(len(chunk))
        return results

    def translate_ids(self, sources: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        """Target ids for already tokenised sources (no BOS/EOS in or out)."""
        device = next(self.model.parameters()).device
        src = collate([make_example(s, []) for s in sources]).src.to(device)
        limits = SearchLimits(config.max_len_a, config.max_len_b)
        with torch.inference_mode():
            if config.beam_size == 1:
                return greedy_search(self.model, src, BOS_ID, EOS_ID, limits)
            return beam_search(self.model, src, BOS_ID, EOS_ID, config.beam_size, config.length_penalty, limits)
