"""Clause pairs: pairs cut at the commas, semicolons and colons both sides share (data/clauses.py)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from selfattention.data.clauses import clause_pairs
from selfattention.training import RunConfig
from selfattention.training.trainer import Trainer


def test_a_pair_with_shared_commas_gives_each_clause_pair_capitalised() -> None:
    pairs = [
        ("Hello, how are you?", "Bonjour, comment allez-vous ?"),
        ("Can I have some water, please?", "Puis-je avoir un peu d'eau, je vous prie ?"),
    ]
    assert clause_pairs(pairs) == [
        ("Hello", "Bonjour"),
        ("How are you?", "Comment allez-vous ?"),
        ("Can I have some water", "Puis-je avoir un peu d'eau"),
        ("Please?", "Je vous prie ?"),
    ]


def test_semicolons_and_french_spaced_colons_cut_too() -> None:
    pairs = [("Listen: the dog is barking; it is late.", "Écoute : le chien aboie ; il est tard.")]
    assert clause_pairs(pairs) == [
        ("Listen", "Écoute"),
        ("The dog is barking", "Le chien aboie"),
        ("It is late.", "Il est tard."),
    ]


@pytest.mark.parametrize(
    "pair",
    [
        ("He has 1,000 sheep.", "Il a 1 000 moutons."),  # no space after the comma: not a clause
        ("Yes, I know, I know.", "Oui, je sais."),  # three clauses against two
        ("A man in a red shirt and a very long blue coat, running.", "Un homme, qui court."),  # lengths far off
        ("No commas here.", "Pas de virgule ici."),
    ],
)
def test_pairs_whose_clauses_do_not_line_up_give_none(pair: tuple[str, str]) -> None:
    assert clause_pairs([pair]) == []


def test_each_clause_pair_comes_once() -> None:
    pairs = [("Sorry, I'm late.", "Désolé, je suis en retard."), ("Sorry, I can't.", "Désolé, je ne peux pas.")]
    assert clause_pairs(pairs).count(("Sorry", "Désolé")) == 1


def test_the_trainer_adds_them_once_an_epoch(
    tiny_run_config: RunConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    everyday = tmp_path / "everyday.tsv"
    everyday.write_text(
        "Hello, how are you?\tBonjour, comment allez-vous ?\nSorry, I'm late.\tDésolé, je suis en retard.\n"
        "The cat sleeps.\tLe chat dort.\n",
        encoding="utf-8",
    )
    data = dataclasses.replace(tiny_run_config.data, corpora=("multi30k", str(everyday)))
    plain_config = dataclasses.replace(tiny_run_config, data=data)
    config = dataclasses.replace(plain_config, data=dataclasses.replace(data, clause_pairs=True))
    plain = Trainer(plain_config, tmp_path / "plain", show_progress=False)
    plain.prepare(resume=False)
    with caplog.at_level(logging.INFO, logger="selfattention"):
        with_clauses = Trainer(config, tmp_path / "clauses", show_progress=False)
        with_clauses.prepare(resume=False)
    expected = [("Hello", "Bonjour"), ("How are you?", "Comment allez-vous ?"), ("Sorry", "Désolé")]
    expected += [("I'm late.", "Je suis en retard.")]
    assert with_clauses.epoch_pairs(1) == plain.epoch_pairs(1) + expected
    assert "clause pairs: 4," in caplog.text
