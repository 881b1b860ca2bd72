"""Watch it translate: the textbook beam search, step by step, against the project's own search.

The tiny untrained model of the web tests (its translations are nonsense, but every number is
real) and the bundled model: the recorded steps must give the translation the Translator gives,
and each step's numbers must be the model's own.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfattention.cli.common import resolve_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection import trace_translation
from selfattention.inspection.watch import watch_translation
from test_web_api import build_tiny_translator

SENTENCES = [
    "A dog ate the food because it was hungry.",
    "I love apple juice.",
    "The cat saw the ball in the park.",
    "We took water.",
]


@pytest.fixture(scope="module")
def tiny() -> Translator:
    return build_tiny_translator(seed=3)


@pytest.mark.parametrize("beam", [1, 2, 4])
@pytest.mark.parametrize("length_penalty", [1.0, 0.6])
def test_the_textbook_search_gives_the_translators_translation(
    tiny: Translator, beam: int, length_penalty: float
) -> None:
    config = DecodingConfig(beam_size=beam, length_penalty=length_penalty, max_len_a=0.5, max_len_b=4)
    expected = tiny.translate(SENTENCES, config)
    for sentence, translation in zip(SENTENCES, expected, strict=True):
        watched = watch_translation(tiny.model, tiny.tokenizer, sentence, config)
        assert watched.translation == translation, sentence


def test_the_bundled_model_is_watched_as_it_translates() -> None:
    translator = Translator.load(resolve_model(None))
    for beam in (1, 4):
        config = DecodingConfig(beam_size=beam)
        expected = translator.translate(SENTENCES, config)
        for sentence, translation in zip(SENTENCES, expected, strict=True):
            assert (
                watch_translation(translator.model, translator.tokenizer, sentence, config).translation == translation
            )


def test_each_step_carries_the_models_own_numbers(tiny: Translator) -> None:
    sentence = SENTENCES[0]
    watched = watch_translation(tiny.model, tiny.tokenizer, sentence, DecodingConfig(beam_size=3), top_k=4)
    trace = trace_translation(tiny.model, tiny.tokenizer, sentence, target=None, decoding=DecodingConfig(beam_size=3))
    assert [step.writes for step in watched.steps] == trace.produced_labels
    assert [step.reads for step in watched.steps] == trace.target_labels
    assert watched.source_labels == trace.source_labels
    with torch.inference_mode():
        logits = tiny.model(torch.tensor([trace.source_ids]), torch.tensor([trace.target_ids]))[0]
    probabilities = logits.softmax(dim=-1)
    layers = len(tiny.model.decoder.layers)
    for t, step in enumerate(watched.steps):
        assert step.index == t
        assert len(step.top) == 4
        values = [p for _, p in step.top]
        assert values == sorted(values, reverse=True)
        torch.testing.assert_close(torch.tensor(values), probabilities[t].topk(4).values)
        written = ([*trace.target_ids[1:], tiny.model.config.eos_id])[t]
        assert step.written_probability == pytest.approx(float(probabilities[t, written]), abs=1e-6)
        assert step.written_probability <= values[0] + 1e-6
        assert step.cross.shape == (layers, tiny.model.config.n_heads, len(trace.source_labels))
        for layer in range(layers):
            expected = trace.recorder.attention("cross", layer).weights[0, :, t]
            torch.testing.assert_close(step.cross[layer], expected.float())
        torch.testing.assert_close(step.cross.sum(dim=-1), torch.ones(layers, tiny.model.config.n_heads))


def test_the_beam_keeps_k_hypotheses_scored_by_their_log_probability(tiny: Translator) -> None:
    watched = watch_translation(tiny.model, tiny.tokenizer, SENTENCES[2], DecodingConfig(beam_size=3))
    assert watched.search_steps >= 1
    for t, step in enumerate(watched.steps[: watched.search_steps]):
        assert 1 <= len(step.beam) <= 3 or step.ended
        scores = [h.log_prob for h in step.beam]
        assert scores == sorted(scores, reverse=True)
        assert all(len(h.ids) == t + 1 and not h.finished and h.log_prob <= 0 for h in step.beam)
        for h in step.ended:
            assert h.finished and h.pieces[-1] == "</s>"
            assert h.score == pytest.approx(h.log_prob / len(h.ids))  # length penalty 1: per token
    # A hypothesis's log-probability is the sum of its pieces' log-probabilities.
    best = watched.steps[1].beam[0]
    src = torch.tensor([[*tiny.tokenizer.encode(SENTENCES[2]), tiny.model.config.eos_id]])
    tgt = torch.tensor([[tiny.model.config.bos_id, *best.ids[:-1]]])
    with torch.inference_mode():
        log_probs = tiny.model(src, tgt)[0].log_softmax(dim=-1)
    assert best.log_prob == pytest.approx(sum(float(log_probs[i, token]) for i, token in enumerate(best.ids)), abs=1e-4)


def test_greedy_watching_has_one_hypothesis_per_step(tiny: Translator) -> None:
    watched = watch_translation(tiny.model, tiny.tokenizer, SENTENCES[3], DecodingConfig(beam_size=1))
    for step in watched.steps[: watched.search_steps - 1]:
        assert len(step.beam) == 1 and step.beam[0].pieces[-1] == step.writes
        assert step.top[0][0] == step.writes or step.top[0][0] in ("<s>", "<pad>")  # greedy takes the likeliest


@pytest.mark.parametrize(("beam", "top"), [(0, 5), (2, 0)])
def test_bad_settings_are_refused(tiny: Translator, beam: int, top: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        watch_translation(tiny.model, tiny.tokenizer, "A dog.", DecodingConfig(beam_size=beam), top_k=top)


def test_scores_are_finite_numbers(tiny: Translator) -> None:
    watched = watch_translation(tiny.model, tiny.tokenizer, SENTENCES[1], DecodingConfig(beam_size=2))
    for step in watched.steps:
        assert all(math.isfinite(p) for _, p in step.top)
        assert all(math.isfinite(h.log_prob) for h in step.beam)
