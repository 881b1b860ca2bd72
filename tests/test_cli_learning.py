"""`selfattention watch` and `selfattention contrast`: the learning views as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfattention.cli import main
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection.contrast import contrast
from selfattention.inspection.watch import watch_translation

HUNGRY = "The dog ate the soup because it was hungry."
DELICIOUS = "The dog ate the soup because it was delicious."


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_watch_prints_each_step_with_its_probabilities_attention_and_beam(
    deep_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "watch", HUNGRY, "--model", str(deep_model_dir), "--beam", "2", "--top", "3")
    assert status == 0, err
    translator = Translator.load(deep_model_dir)
    watched = watch_translation(translator.model, translator.tokenizer, HUNGRY, DecodingConfig(beam_size=2), top_k=3)
    assert out.startswith(f"Translation: {watched.translation}\n")
    steps = re.findall(r"^Step (\d+): reads '(.*)', writes '(.*)' \(", out, flags=re.MULTILINE)
    assert [(int(n), r, w) for n, r, w in steps] == [(s.index + 1, s.reads, s.writes) for s in watched.steps]
    assert out.count("likeliest next: ") == len(watched.steps)
    first = re.search(r"likeliest next: (.*)\n", out).group(1)
    assert len(first.split(", ")) == 3
    assert first.split(", ")[0].startswith(watched.steps[0].top[0][0] + " ")
    assert "looked at (cross-attention, layer 0, mean of heads)" in out
    assert re.search(r"^  beam 1: +-?\d+\.\d{3}  ", out, flags=re.MULTILINE)


def test_watch_greedy_lists_no_beam(deep_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "watch", "I am good.", "--model", str(deep_model_dir), "--beam", "1")
    assert status == 0 and "greedy search" in out and "beam 1:" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--beam", "0"], "--beam must be at least 1"),
        (["--top", "0"], "--top must be at least 1"),
        (["--layer", "7"], "--layer 7 does not exist"),
    ],
)
def test_watch_refuses_bad_options(
    deep_model_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, "watch", "I am good.", "--model", str(deep_model_dir), *argv)
    assert status == 2 and message in err and "Traceback" not in err and out == ""


def test_contrast_prints_both_translations_and_the_heads_that_move(
    deep_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "contrast", HUNGRY, DELICIOUS, "--model", str(deep_model_dir), "--top", "3")
    assert status == 0, err
    translator = Translator.load(deep_model_dir)
    expected = contrast(translator, HUNGRY, DELICIOUS, decoding=DecodingConfig(beam_size=4))
    for number, (sentence, translation) in enumerate(
        zip(expected.sentences, expected.translations, strict=True), start=1
    ):
        assert f"{number}. {sentence}\n   → {translation}\n" in out
    rows = re.findall(r"^ +(\d+) +(\d+) .* ([+-]\d+\.\d)$", out, flags=re.MULTILINE)
    assert [(int(layer), int(head)) for layer, head, _ in rows] == [(h.layer, h.head) for h in expected.heads[:3]]
    assert float(rows[0][2]) == pytest.approx(100 * expected.heads[0].shift, abs=0.051)
    assert "between 'dog' and 'soup'" in out


def test_contrast_without_antecedents_it_can_find_says_to_name_them(
    deep_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys,
        "contrast",
        "The dog ate because it was hungry.",
        "The dog ate because it was fed.",
        "--model",
        str(deep_model_dir),
    )
    assert status == 2 and "name them" in err and "Traceback" not in err
