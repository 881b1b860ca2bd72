"""Text in, text out: tokenise, batch by length, search, detokenise, restore the order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from selfattention.data.batching import collate, make_example
from selfattention.data.marian_tokenizer import load_tokenizer
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TOKENIZER_FILE, SubwordTokenizer
from selfattention.decoding.beam import beam_search
from selfattention.decoding.greedy import greedy_search
from selfattention.decoding.search import SearchLimits
from selfattention.model import Transformer
from selfattention.model_io import ModelFileError, load_model


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


class Translator:
    """A model and its tokenizer, ready to translate sentences.

    The special ids come from the model's configuration: the decoder starts from ``bos_id``
    (an imported Marian model starts from its padding id) and stops at ``eos_id``.
    """

    def __init__(self, model: Transformer, tokenizer: SubwordTokenizer) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id = special_ids(model)

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu") -> Translator:
        """The model of a directory and its tokenizer (``tokenizer.model``, or an imported Marian pair).

        A tokenizer whose vocabulary is not the model's (another run's, or a damaged file) is refused:
        its ids would index the wrong embeddings, or none at all.
        """
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
        return cls(model, tokenizer)

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
        limit = self.max_source_length
        for i in todo:
            if len(ids[i]) > limit:
                raise ValueError(
                    f"input {i + 1} is {len(ids[i])} subword pieces long; this model reads at most {limit} "
                    "(split it into sentences)"
                )
        if progress is not None and len(todo) < len(texts):
            progress(len(texts) - len(todo))  # empty inputs are done at once
        for start in range(0, len(todo), config.batch_size):
            chunk = todo[start : start + config.batch_size]
            for index, tokens in zip(chunk, self.translate_ids([ids[i] for i in chunk], config), strict=True):
                results[index] = self.tokenizer.decode(tokens)
            if progress is not None:
                progress(len(chunk))
        return results

    @property
    def max_source_length(self) -> int:
        """The longest input (and output) in pieces: the model's positions, less one for EOS."""
        config = self.model.config
        return (config.max_positions if config is not None else 1024) - 1

    def translate_ids(self, sources: Sequence[Sequence[int]], config: DecodingConfig) -> list[list[int]]:
        """Target ids for already tokenised sources (no BOS/EOS in or out)."""
        device = next(self.model.parameters()).device
        examples = [make_example(s, [], self.eos_id) for s in sources]
        src = collate(examples, self.pad_id, self.bos_id, self.eos_id).src.to(device)
        limits = SearchLimits(config.max_len_a, config.max_len_b, hard_limit=self.max_source_length)
        with torch.inference_mode():
            if config.beam_size == 1:
                return greedy_search(self.model, src, self.bos_id, self.eos_id, limits)
            return beam_search(
                self.model, src, self.bos_id, self.eos_id, config.beam_size, config.length_penalty, limits
            )
