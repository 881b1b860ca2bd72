"""The data of an epoch: which pairs it trains on, drawn from the seed and the epoch alone, tokenised.

Each epoch is every corpus its ``data.repeats`` count of times, then the epoch's pronoun pairs
(data/pronoun_pairs.py, a share of the corpus pairs, made anew each epoch), then the clause pairs
(data/clauses.py, the same every epoch), then case and punctuation noise on a share of them all
(data/augment.py). A resumed run therefore sees the same pairs. For the pronoun pairs the
generator also says where "it" and its noun are, which the supervised head's loss reads
(training/antecedent.py); the noise keeps a sentence's words where they were, so those links hold.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from selfattention.data import Example, make_example
from selfattention.data.augment import add_noise
from selfattention.data.clauses import clause_pairs
from selfattention.data.corpora import find_data_dir
from selfattention.data.links import source_links
from selfattention.data.pronoun_pairs import LinkedPair, PronounPairs
from selfattention.data.text_files import CorpusError
from selfattention.data.tokenizer import Tokenizer
from selfattention.training.config import DataConfig

log = logging.getLogger(__name__)

Pair = tuple[str, str]


class EpochData:
    """The training pairs of each epoch of a run (``corpora`` as loaded, ``data`` its settings).

    Raises ValueError when pronoun pairs are asked for but the corpora cannot make them.
    """

    def __init__(self, corpora: list[list[Pair]], data: DataConfig, seed: int) -> None:
        self.corpora = corpora
        self.data = data
        self.seed = seed
        train_pairs = [pair for pairs in corpora for pair in pairs]
        self.clauses = clause_pairs(train_pairs) if data.clause_pairs else []
        if data.clause_pairs:
            log.info("clause pairs: %d, cut from the corpora's pairs at shared commas", len(self.clauses))
        self.pronouns: PronounPairs | None = None
        if data.pronoun_pairs > 0:
            excluded = excluded_sentences(data.exclude, data.data_dir)
            try:
                self.pronouns = PronounPairs(
                    train_pairs,
                    first_person=data.first_person_predicates,
                    exclude=excluded,
                    person_subjects=data.person_subjects,
                )
            except ValueError as error:
                raise ValueError(f"data.pronoun_pairs={data.pronoun_pairs:g}: {error}") from None
            if excluded:
                log.info("pronoun pairs: never the %d sentences of %s", len(excluded), ", ".join(data.exclude))
            log.info(
                "pronoun pairs from %d nouns, %d predicates and %d clauses of the corpora",
                len(self.pronouns.nouns),
                len(self.pronouns.predicates),
                len(self.pronouns.clauses),
            )

    @property
    def draws_anew(self) -> bool:
        """Whether epochs differ (pronoun pairs or noise drawn each epoch), so that each is encoded again."""
        return self.pronouns is not None or self.data.noise().any

    def pairs(self, epoch: int, *, repeats: bool = True) -> list[Pair]:
        """The training pairs of ``epoch`` (each corpus once with ``repeats=False``)."""
        return self.linked_pairs(epoch, repeats=repeats)[0]

    def linked_pairs(self, epoch: int, *, repeats: bool = True) -> tuple[list[Pair], list[LinkedPair | None]]:
        """:meth:`pairs`, and for each where its "it" and antecedent are (None but for a pronoun pair)."""
        counts = self.data.repeat_counts() if repeats else (1,) * len(self.corpora)
        pairs = [pair for corpus, count in zip(self.corpora, counts, strict=True) for pair in corpus * count]
        links: list[LinkedPair | None] = [None] * len(pairs)
        rng = random.Random(f"{self.seed}:data:{epoch}")
        if self.pronouns is not None:
            linked = self.pronouns.generate_linked(round(self.data.pronoun_pairs * len(pairs)), rng)
            pairs += [pair.pair for pair in linked]
            links += linked
        pairs += self.clauses
        links += [None] * len(self.clauses)
        return add_noise(pairs, self.data.noise(), rng), links


def excluded_sentences(paths: Sequence[str], data_dir: str | None) -> list[str]:
    """The sentences of ``paths`` (the first tab-separated field of each line that is not empty or a
    ``#`` comment); a relative path not found as given is looked for under the data directory.

    Raises ValueError naming a file that is in neither place.
    """
    sentences = []
    for name in paths:
        path = Path(name)
        if not path.is_file() and not path.is_absolute():
            with contextlib.suppress(CorpusError):  # no data directory: the name as given is all there is
                path = find_data_dir(data_dir) / name
        if not path.is_file():
            raise ValueError(f"data.exclude: {name} is not a file (looked as given and under the data directory)")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                sentences.append(line.split("\t")[0].strip())
    return sentences


def encode_pairs(
    tokenizer: Tokenizer, pairs: list[Pair], max_positions: int, links: list[LinkedPair | None] | None = None
) -> list[Example]:
    """Tokenised pairs, those with a side longer than ``max_positions - 1`` pieces skipped (and counted);
    with ``links``, the pronoun pairs' examples carry where "it" and its antecedent are."""
    sources = tokenizer.encode_batch([s for s, _ in pairs])
    targets = tokenizer.encode_batch([t for _, t in pairs])
    limit = max_positions - 1
    token_links: list[tuple[int, tuple[int, ...]] | None] = [None] * len(pairs)
    if links is not None:
        token_links, dropped = source_links([s for s, _ in pairs], sources, links, tokenizer.pieces)
        linked = sum(link is not None for link in links)
        log.info(
            "antecedent links: %d of %d pronoun pairs linked to their tokens, %d dropped (words and pieces differ)",
            linked - dropped,
            linked,
            dropped,
        )
    kept = [
        make_example(s, t, link=link)
        for s, t, link in zip(sources, targets, token_links, strict=True)
        if len(s) <= limit and len(t) <= limit
    ]
    if len(kept) < len(pairs):
        log.info("skipped %d pairs longer than the model's %d positions", len(pairs) - len(kept), limit)
    return kept
