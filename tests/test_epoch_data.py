"""The data of an epoch: sentences an evaluation uses are never generated (training/epoch_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import pronoun_corpus
from selfattention.training.config import DataConfig
from selfattention.training.epoch_data import EpochData, excluded_sentences


def test_excluded_sentences_are_read_from_tsv_and_text_files(tmp_path: Path) -> None:
    (tmp_path / "set.tsv").write_text("# a comment\nThe cat is here.\til\n\nIt was late.\telle\n", encoding="utf-8")
    (tmp_path / "more.txt").write_text("One more sentence.\n", encoding="utf-8")
    found = excluded_sentences([str(tmp_path / "set.tsv"), str(tmp_path / "more.txt")], None)
    assert found == ["The cat is here.", "It was late.", "One more sentence."]


def test_a_relative_name_is_looked_for_under_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "everyday").mkdir()
    (tmp_path / "everyday" / "set.tsv").write_text("A sentence.\til\n", encoding="utf-8")
    assert excluded_sentences(["everyday/set.tsv"], str(tmp_path)) == ["A sentence."]
    with pytest.raises(ValueError, match=r"data\.exclude: everyday/none\.tsv is not a file"):
        excluded_sentences(["everyday/none.tsv"], str(tmp_path))


def test_an_epoch_never_holds_an_excluded_pronoun_pair(tmp_path: Path) -> None:
    pairs = pronoun_corpus()
    plain = {source for source, _ in EpochData([pairs], DataConfig(pronoun_pairs=1.0), seed=3).pairs(0)}
    made = sorted(plain - {english for english, _ in pairs})[:10]  # pronoun pairs the epoch would hold
    assert len(made) == 10
    banned = tmp_path / "banned.tsv"
    banned.write_text("".join(f"{sentence}\til\n" for sentence in made), encoding="utf-8")
    epoch = EpochData([pairs], DataConfig(pronoun_pairs=1.0, exclude=(str(banned),)), seed=3)
    english = [source for source, _ in epoch.pairs(0)]
    assert not set(english) & set(made)
    assert len(english) == 2 * len(pairs)  # as many pronoun pairs as before, others drawn in their place
