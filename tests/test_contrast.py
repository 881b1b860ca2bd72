"""Why "il" and not "elle": the two translations, the pronoun's probabilities, and the heads' shift."""

from __future__ import annotations

import pytest
import torch

from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection import trace_translation
from selfattention.inspection.contrast import _choice_ids, contrast
from selfattention.inspection.words import find_word, group_words, word_attention
from test_web_api import build_tiny_translator

HUNGRY = "The dog ate the soup because it was hungry."
DELICIOUS = "The dog ate the soup because it was delicious."


@pytest.fixture(scope="module")
def tiny() -> Translator:
    return build_tiny_translator(seed=1)


def test_both_translations_are_the_translators(tiny: Translator) -> None:
    result = contrast(tiny, HUNGRY, DELICIOUS, decoding=DecodingConfig(beam_size=2))
    assert result.translations == tuple(tiny.translate([HUNGRY, DELICIOUS], DecodingConfig(beam_size=2)))
    assert result.antecedents == ("dog", "soup")  # found: the nouns after a determiner before "it"
    assert result.pronoun == "it" and result.choices == ("il", "elle")


def test_the_shift_is_how_far_each_heads_attention_from_it_moves(tiny: Translator) -> None:
    result = contrast(tiny, HUNGRY, DELICIOUS, antecedents=["dog", "soup"], decoding=DecodingConfig(beam_size=1))
    layers, heads = tiny.model.config.encoder_layers, tiny.model.config.n_heads
    assert len(result.heads) == layers * heads
    assert [abs(h.shift) for h in result.heads] == sorted((abs(h.shift) for h in result.heads), reverse=True)
    expected = {}
    for index, text in enumerate((HUNGRY, DELICIOUS)):
        trace = trace_translation(tiny.model, tiny.tokenizer, text, decoding=DecodingConfig(beam_size=1))
        words = group_words(trace.source_labels)
        it, dog, soup = (find_word(words, w) for w in ("it", "dog", "soup"))
        for layer in range(layers):
            weights = word_attention(trace.recorder.attention("encoder", layer).weights[0], words, words)
            for head in range(heads):
                expected[(index, layer, head)] = (float(weights[head, it, dog]), float(weights[head, it, soup]))
    for h in result.heads:
        one, two = expected[(0, h.layer, h.head)], expected[(1, h.layer, h.head)]
        assert h.first == pytest.approx(one, abs=1e-6) and h.second == pytest.approx(two, abs=1e-6)
        assert h.shift == pytest.approx((one[0] - one[1]) - (two[0] - two[1]), abs=1e-6)


@pytest.mark.parametrize("french", ["Le chien a mangé parce qu'il avait faim.", "Le chien a mangé car il avait faim."])
def test_the_pronouns_probability_is_read_at_the_step_that_writes_it(tiny: Translator, french: str) -> None:
    """Each choice's probability there is the product of its pieces' probabilities after the same prefix."""
    from selfattention.inspection.contrast import _pronoun_step

    trace = trace_translation(tiny.model, tiny.tokenizer, HUNGRY, target=french)
    step = _pronoun_step(tiny.model, tiny.tokenizer, trace, ["il", "elle"])
    assert step.index is not None and step.written == "il"
    prefix_text = tiny.tokenizer.decode(trace.target_ids[1 : step.index + 1])
    assert french.startswith(prefix_text) and french[len(prefix_text) :].lstrip().startswith("il")
    src = torch.tensor([trace.source_ids])
    for choice in ("il", "elle"):
        joined = "" if prefix_text.endswith("'") else " "
        ids = tiny.tokenizer.encode_target(prefix_text + joined + choice)
        prefix = trace.target_ids[1 : step.index + 1]
        assert ids[: len(prefix)] == prefix
        probability = 1.0
        for n in range(len(prefix), len(ids)):
            with torch.inference_mode():
                logits = tiny.model(src, torch.tensor([[trace.target_ids[0], *ids[:n]]]))[0, -1]
            probability *= float(logits.softmax(dim=-1)[ids[n]])
        assert step.probabilities[choice] == pytest.approx(probability, rel=1e-4)
    assert 0 < step.probabilities["il"] <= 1


def test_choice_ids_are_the_pieces_with_and_without_a_word_start(tiny: Translator) -> None:
    for choice in ("il", "elle", "zzzz"):
        pieces = tiny.tokenizer.pieces(_choice_ids(tiny.tokenizer, choice))
        assert set(pieces) <= {"▁" + choice, choice}


@pytest.mark.parametrize(
    ("first", "second", "kwargs", "message"),
    [
        ("The dog ate because it was hungry.", DELICIOUS, {}, "cannot tell the two antecedents"),
        (HUNGRY, DELICIOUS, {"antecedents": ["dog", "cat"]}, "no word 'cat'"),
        (HUNGRY, DELICIOUS, {"pronoun": "she"}, "no word 'she'"),
        (HUNGRY, DELICIOUS, {"antecedents": ["dog"]}, "two antecedents"),
        (HUNGRY, DELICIOUS, {"choices": ["il"]}, "at least two choices"),
    ],
)
def test_what_cannot_be_compared_is_refused_with_the_reason(
    tiny: Translator, first: str, second: str, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        contrast(tiny, first, second, decoding=DecodingConfig(beam_size=1), **kwargs)
