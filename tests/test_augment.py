"""Case and punctuation noise (data/augment.py) and the training mix of an epoch."""

from __future__ import annotations

import random

import pytest

from selfattention.data.augment import (
    NoiseShares,
    add_noise,
    drop_final_punctuation,
    exclamation_to_stop,
    title_case,
)

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
        ({"exclamation_to_stop": 2.0}, "exclamation_to_stop must be a share"),
        ({"uppercase": 0.6, "lowercase": 0.6}, "at most 1"),
    ],
)
def test_bad_shares_are_refused(shares: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NoiseShares(**shares)


def test_exclamation_to_stop_makes_a_final_exclamation_a_full_stop() -> None:
    assert exclamation_to_stop("Hello everyone!") == "Hello everyone."
    assert exclamation_to_stop("Salut tout le monde !") == "Salut tout le monde."
    assert exclamation_to_stop("Salut !!") == "Salut."
    assert exclamation_to_stop('He said "Come!"') == 'He said "Come."'
    assert exclamation_to_stop("Il a dit « viens ! »") is None  # a spaced quote's mark: as drop_final_punctuation
    assert exclamation_to_stop("Quoi ?!") is None  # a question stays one
    assert exclamation_to_stop("Attends…!") is None
    assert exclamation_to_stop("Hello.") is None
    assert exclamation_to_stop("Stop! Now.") is None  # only the final mark counts
    assert exclamation_to_stop("!") is None  # nothing before it


def test_exclamation_to_stop_changes_its_share_of_the_exclaimed_pairs_only() -> None:
    exclaimed = [(f"Hello {i}!", f"Salut {i} !") for i in range(2000)]
    mixed = [(f"Hello {i}!", f"Salut {i}.") for i in range(500)]  # one side only: never changed
    noisy = add_noise(exclaimed + mixed + PAIRS[:500], NoiseShares(exclamation_to_stop=0.4), random.Random(5))
    stopped = [pair for pair in noisy[:2000] if pair[0].endswith(".")]
    assert abs(len(stopped) / 2000 - 0.4) < 0.04
    assert all(target.endswith(f"{source.split()[1][:-1]}.") and " ." not in target for source, target in stopped)
    assert noisy[2000:] == mixed + PAIRS[:500]


def test_a_share_left_at_zero_draws_nothing() -> None:
    """A run without exclamation_to_stop sees the noise it saw before the option existed."""
    shares = NoiseShares(uppercase=0.2, no_final_punctuation=0.3)
    pairs = [(f"Hello {i}!", f"Salut {i} !") for i in range(300)]
    rng = random.Random(7)
    expected = []
    for source, target in pairs:  # the draws as add_noise made them before: one for the case, one for the mark
        if rng.random() < 0.2:
            source, target = source.upper(), target.upper()
        if rng.random() < 0.3:
            source, target = drop_final_punctuation(source), drop_final_punctuation(target)
        expected.append((source, target))
    assert add_noise(pairs, shares, random.Random(7)) == expected
