"""Check an exported Marian directory with Hugging Face ``transformers`` itself.

``MarianMTModel.from_pretrained`` and ``MarianTokenizer.from_pretrained`` load the directory; the
check compares token ids, teacher-forced logits and greedy translations with ours. This is the one
place that imports ``transformers`` (an optional dependency: ``pip install 'selfattention[hf]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.interop.marian import InteropError
from selfattention.model import Transformer


@dataclass(frozen=True)
class MarianCheck:
    """What agreed between our model and ``transformers`` on the same sentences."""

    same_source_ids: bool
    max_relative_error: float  # of the teacher-forced logits, relative to their largest magnitude
    ours: list[list[int]]  # greedy translations, without start or end
    theirs: list[list[int]]

    @property
    def same_translations(self) -> bool:
        return self.ours == self.theirs

    @property
    def passed(self) -> bool:
        return self.same_source_ids and self.same_translations and self.max_relative_error <= 1e-4


def check_marian_export(
    model: Transformer,
    tokenizer: SubwordTokenizer,
    directory: Path | str,
    sentences: Sequence[str],
    max_new_tokens: int = 32,
) -> MarianCheck:
    """Load ``directory`` with ``transformers`` and compare it with ``model`` on ``sentences``."""
    try:
        from transformers import MarianMTModel, MarianTokenizer
    except ImportError:
        raise InteropError(
            "checking an export needs Hugging Face transformers: pip install 'selfattention[hf]'"
        ) from None
    theirs_model = MarianMTModel.from_pretrained(str(directory)).eval()
    theirs_tokenizer = MarianTokenizer.from_pretrained(str(directory))
    translator = Translator(model, tokenizer)
    batch = theirs_tokenizer(list(sentences), return_tensors="pt", padding=True)
    ours_ids = [[*tokenizer.encode(text), translator.eos_id] for text in sentences]
    theirs_ids = [
        row[: int(mask.sum())] for row, mask in zip(batch.input_ids.tolist(), batch.attention_mask, strict=True)
    ]
    config = DecodingConfig(beam_size=1, max_len_a=0.0, max_len_b=max_new_tokens)
    ours = translator.translate_ids([ids[:-1] for ids in ours_ids], config)
    with torch.inference_mode():
        generated = theirs_model.generate(
            **batch, num_beams=1, do_sample=False, max_new_tokens=max_new_tokens, bad_words_ids=_banned(translator)
        )
    theirs = [_strip(row, translator) for row in generated.tolist()]
    error = 0.0
    for index, target in enumerate(ours):
        decoder_input = torch.tensor([[translator.bos_id, *target]])
        source = torch.tensor([theirs_ids[index]])
        with torch.inference_mode():
            reference = theirs_model(input_ids=source, decoder_input_ids=decoder_input).logits
            logits = model(source, decoder_input)
        error = max(error, float((logits - reference).abs().max() / reference.abs().max().clamp_min(1e-30)))
    return MarianCheck(ours_ids == theirs_ids, error, ours, theirs)


def _banned(translator: Translator) -> list[list[int]]:
    return [[translator.pad_id]] + ([[translator.bos_id]] if translator.bos_id != translator.pad_id else [])


def _strip(row: list[int], translator: Translator) -> list[int]:
    """``generate()``'s output without the start token, the end token and padding."""
    row = row[1:]
    if translator.eos_id in row:
        row = row[: row.index(translator.eos_id)]
    return [token for token in row if token != translator.pad_id]
