"""Case and punctuation noise (data/augment.py) and the training mix of an epoch."""

from __future__ import annotations

import random

import pytest

from selfattention.data.augment import NoiseShares, add_noise, drop_final_punctuation, title_case

PAIRS = [(f"Do you know song {i}?", f"Connais-tu la chanson {i} ?") for i in range(4000)]


def test_each_change_is_made_to_its_share_of_pairs_on_both_sides() -> None:
    shares = NoiseShares(uppercase=0.1, titlecase=0.05, lowercase=0.2, no_final_punctuation=0.3)
    noisy = add_noise(PAIRS, shares, random.Random(1))
    assert len(noisy) == len(PAIRS)
    upper = [pair for pair in noisy if pair[0].startswith("DO YOU")]
    title = [pair for pair in noisy if pair[0].startswith("Do You")]
    lower = [pair for pair in noisy if pair[0].startswith("do you")]
    bare = [pair for pair in noisy if not pair[0].endswith("?")]
    for found, share in ((upper, 0.1), (title, 0.05), (lower, 0.2), (bare, 0.3)):
        assert abs(len(found) / len(PAIRS) - share) < 0.03
    assert all(target.startswith("CONNAIS-TU LA CHANSON") for _, target in upper)
    assert all(target.startswith("Connais-tu La Chanson") for _, target in title)
    assert all(target.startswith("connais-tu la chanson") for _, target in lower)
    assert all(not target.endswith("?") and not target.endswith(" ") for _, target in bare)
    unchanged = len(PAIRS) - len({*upper, *title, *lower, *bare})
    assert unchanged > 0.4 * len(PAIRS)


def test_the_same_seed_gives_the_same_noise_and_no_shares_change_nothing() -> None:
    shares = NoiseShares(uppercase=0.5)
    assert add_noise(PAIRS, shares, random.Random(3)) == add_noise(PAIRS, shares, random.Random(3))
    assert add_noise(PAIRS, shares, random.Random(3)) != add_noise(PAIRS, shares, random.Random(4))
    assert add_noise(PAIRS, NoiseShares(), random.Random(3)) == PAIRS


def test_title_case_and_final_punctuation() -> None:
    assert title_case("don't stop me now") == "Don't Stop Me Now"
    assert title_case("l'école est fermée") == "L'école Est Fermée"
    assert drop_final_punctuation("Je vais bien.") == "Je vais bien"
    assert drop_final_punctuation("Vraiment ?") == "Vraiment"
    assert drop_final_punctuation("Quoi ?!") == "Quoi"
    assert drop_final_punctuation("Il a dit « non. »") == "Il a dit « non. »"  # not a final mark
    assert drop_final_punctuation("Attends…") == "Attends"
    assert drop_final_punctuation("?") == "?"  # nothing would be left
    assert drop_final_punctuation("No punctuation") == "No punctuation"


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"uppercase": 1.5}, "uppercase must be a share between 0 and 1"),
        ({"no_final_punctuation": -0.1}, "no_final_punctuation must be a share"),
        ({"uppercase": 0.6, "lowercase": 0.6}, "at most 1"),
    ],
)
def test_bad_shares_are_refused(shares: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NoiseShares(**shares)
