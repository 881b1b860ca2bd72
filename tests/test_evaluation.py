"""Translation scores: sacreBLEU and chrF, and BLEU comparable with published Multi30k results."""

from __future__ import annotations

import pytest
import sacrebleu

from selfattention.evaluation import Scores, bleu, comparable_bleu, moses_lowercase_tokens, score

HYPOTHESES = ["The cat sat on the mat.", "A dog runs in the park today.", "Hello there, my friend!"]
REFERENCES = ["The cat is sitting on the mat.", "A dog is running in the park.", "Hello there, my dear friend!"]


def test_identical_text_scores_100() -> None:
    result = score(REFERENCES, REFERENCES)
    assert result.bleu == pytest.approx(100.0)
    assert result.chrf == pytest.approx(100.0)


def test_score_matches_sacrebleu() -> None:
    result = score(HYPOTHESES, REFERENCES)
    expected_bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score
    expected_chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score
    assert 10 < expected_bleu < 90  # a real partial match, not a degenerate case
    assert result.bleu == pytest.approx(expected_bleu, abs=1e-9)
    assert result.chrf == pytest.approx(expected_chrf, abs=1e-9)
    assert bleu(HYPOTHESES, REFERENCES) == pytest.approx(expected_bleu, abs=1e-9)


def test_score_is_cased_and_detokenised() -> None:
    # sacreBLEU defaults: case matters, and the 13a tokenizer splits punctuation itself.
    assert score(["the cat sat on the mat."], ["The cat sat on the mat."]).bleu < 100
    assert score(["The cat sat on the mat ."], ["The cat sat on the mat."]).bleu == pytest.approx(100.0)


def test_signature_and_str() -> None:
    result = score(HYPOTHESES, REFERENCES)
    assert isinstance(result, Scores)
    assert "nrefs:1" in result.signature
    assert "case:mixed" in result.signature
    assert "tok:13a" in result.signature
    text = str(result)
    assert f"BLEU {result.bleu:.2f}" in text
    assert f"chrF {result.chrf:.2f}" in text
    assert result.signature in text


@pytest.mark.parametrize("function", [score, bleu, comparable_bleu])
def test_mismatched_lengths(function: object) -> None:
    with pytest.raises(ValueError) as info:
        function(["a", "b"], ["a", "b", "c"])  # type: ignore[operator]
    message = str(info.value)
    assert "2 translations" in message
    assert "3 references" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What sacremoses produces for French with escape=True; the official references
        # (multi30k/tok/test_2016_flickr.lc.norm.tok.fr) are written the same way.
        ("Un homme qu'il voit.", "un homme qu&apos; il voit ."),
        ("C'est l'été !", "c&apos; est l&apos; été !"),
        ("Des gens réparent le toit d'une maison.", "des gens réparent le toit d&apos; une maison ."),
        ('Il a dit "oui" à l\'homme.', "il a dit &quot; oui &quot; à l&apos; homme ."),
        ("L'homme & la femme <b>.", "l&apos; homme &amp; la femme &lt; b &gt; ."),
        ("Deux chiens, en arrière-plan : « oui » ?", "deux chiens , en arrière-plan : « oui » ?"),
    ],
)
def test_moses_lowercase_tokens_french(text: str, expected: str) -> None:
    assert moses_lowercase_tokens([text]) == [expected]
    assert moses_lowercase_tokens([text], "fr") == [expected]


def test_moses_lowercase_tokens_english_splits_clitics_the_english_way() -> None:
    assert moses_lowercase_tokens(["The man's hat isn't red."], "en") == ["the man &apos;s hat isn &apos;t red ."]


def test_moses_lowercase_tokens_keeps_line_count() -> None:
    texts = ["Un.", "", "Deux chiens."]
    assert moses_lowercase_tokens(texts) == ["un .", "", "deux chiens ."]
    assert moses_lowercase_tokens([]) == []


def test_comparable_bleu_of_perfect_output_is_100() -> None:
    hypotheses = ["Un homme qu'il voit.", "Des gens réparent le toit d'une maison.", "C'est l'été !"]
    # Official-style references: lower-cased, Moses-tokenised, escaped.
    references = [
        "un homme qu&apos; il voit .",
        "des gens réparent le toit d&apos; une maison .",
        "c&apos; est l&apos; été !",
    ]
    assert comparable_bleu(hypotheses, references) == pytest.approx(100.0)
    assert comparable_bleu(hypotheses, moses_lowercase_tokens(hypotheses)) == pytest.approx(100.0)


def test_comparable_bleu_ignores_case_but_not_words() -> None:
    references = ["un homme qu&apos; il voit .", "deux chiens jouent dans la neige ."]
    assert comparable_bleu(["UN HOMME QU'IL VOIT.", "Deux chiens jouent dans la neige."], references) == pytest.approx(
        100.0
    )
    worse = comparable_bleu(["Un homme qu'il voit.", "Deux chats jouent dans la neige."], references)
    assert 0 < worse < 100


def test_comparable_bleu_does_not_retokenise_references() -> None:
    # Published results use ``sacrebleu --tokenize none``: tokens are exactly the
    # space-separated words of the tokenised text. Here the reference keeps "et/ou" as one
    # token; re-tokenising with sacreBLEU's default 13a would split it and score higher.
    hypotheses = ["Un homme et ou une femme."]
    references = ["un homme et/ou une femme ."]
    tokenised_hypothesis = ["un homme et ou une femme ."]
    untouched = sacrebleu.corpus_bleu(tokenised_hypothesis, [references], tokenize="none").score
    retokenised = sacrebleu.corpus_bleu(tokenised_hypothesis, [references], tokenize="13a").score
    assert untouched < retokenised - 10
    assert comparable_bleu(hypotheses, references) == pytest.approx(untouched)
