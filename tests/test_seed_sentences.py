"""The seeds' sentences and a greeting, by the bundled model at `selfattention translate`'s defaults (issue 23).

Each translation must pass its rule (``selfattention.evaluation.seed_rules``) and not be degenerate,
and one encoder head must send at least half of "it"'s attention to "dog" in seed 000's sentence.
One sentence is an expected failure, strictly (only a failed assertion counts, and the day the model
gets it right the test reports XPASS as a failure and its marker must go): "I love apple juice.",
which Tatoeba's train split itself pairs with "J'adore le jus d'orange.".
"""

from __future__ import annotations

from functools import cache

import pytest

from selfattention.cli import build_parser
from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.cli.translate import decoding_config
from selfattention.decoding import DecodingConfig, Translator
from selfattention.evaluation.degeneration import degeneration, translate_with_limits
from selfattention.evaluation.seed_rules import DOG_SENTENCE, SEED_EXAMPLES, SeedExample
from selfattention.inspection import trace_translation
from selfattention.inspection.heads import rank_heads

pytestmark = pytest.mark.slow

STRONGEST_HEAD = 0.5
NOT_YET_RIGHT = {
    "I love apple juice.": "the bundled model writes 'J'adore les jus d'orange.'; Tatoeba's train split pairs this "
    "very sentence with 'J'adore le jus d'orange.'"
}


@cache
def _translator_and_config() -> tuple[Translator, DecodingConfig]:
    config = decoding_config(build_parser().parse_args(["translate"]))  # the command's own defaults
    return Translator.load(BUNDLED_MODELS / DEFAULT_MODEL), config


def _examples() -> list[object]:
    return [
        pytest.param(
            example,
            id=example.source,
            marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=NOT_YET_RIGHT[example.source])]
            if example.source in NOT_YET_RIGHT
            else [],
        )
        for example in SEED_EXAMPLES
    ]


@pytest.mark.parametrize("example", _examples())
def test_each_seed_sentence_is_right(example: SeedExample) -> None:
    translator, config = _translator_and_config()
    (output,) = translate_with_limits(translator, [example.source], config)
    missing = example.missing(output.text)
    assert not missing, f"{example.source!r} -> {output.text!r} lacks {' and '.join(map(str, missing))}"


def test_no_seed_translation_is_degenerate() -> None:
    translator, config = _translator_and_config()
    outputs = translate_with_limits(translator, [example.source for example in SEED_EXAMPLES], config)
    problems = [
        f"{example.source!r} -> {output.text!r}: {'; '.join(reasons)}"
        for example, output in zip(SEED_EXAMPLES, outputs, strict=True)
        if (reasons := degeneration(output.text, example.source, hit_length_limit=output.hit_length_limit))
    ]
    assert not problems, "\n".join(problems)


def test_a_head_links_it_to_dog() -> None:
    translator, config = _translator_and_config()
    trace = trace_translation(translator.model, translator.tokenizer, DOG_SENTENCE, decoding=config)
    best = rank_heads(trace, "it", "dog", "encoder")[0]
    assert best.weight >= STRONGEST_HEAD, (
        f"the strongest head from 'it' to 'dog' (layer {best.layer}, head {best.head}) gives {best.weight:.1%}, "
        f"under {STRONGEST_HEAD:.0%}"
    )
