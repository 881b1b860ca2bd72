"""The handwritten everyday development sets, read from ``everyday/`` in the data directory, and their variants.

- ``everyday.tsv``: ``English<TAB>one good French translation``, scored with chrF and BLEU;
- ``pronouns.tsv``: ``English<TAB>il|elle``, the pronoun that "it" must become (the gender of the
  noun it refers to), scored by :func:`selfattention.evaluation.seed_rules.pronoun_is_right`.

Lines starting with ``#`` are comments; empty lines are skipped. Any other line must have exactly
two tab-separated fields, both non-empty (and, in ``pronouns.tsv``, the second il or elle): a line
that does not is refused with a :class:`CorpusError` naming the file and the line.

The sets' README asks for two robustness variants of every sentence, scored against the same
references: the sentence in CAPITALS, and lower-cased without its final punctuation
(:data:`VARIANTS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from selfattention.data.corpora import find_data_dir
from selfattention.data.parallel import Pair
from selfattention.data.text_files import CorpusError, read_lines
from selfattention.evaluation.seed_rules import PRONOUNS

EVERYDAY_FILE = "everyday/everyday.tsv"
PRONOUNS_FILE = "everyday/pronouns.tsv"

_FINAL_PUNCTUATION = re.compile(r"\s*[.!?…]+\s*$")


def read_pairs(path: Path | str) -> list[Pair]:
    """The ``(English, second field)`` pairs of a two-column TSV file with ``#`` comments."""
    return [(english, second) for _, english, second in _numbered_pairs(Path(path))]


def read_pronoun_set(path: Path | str) -> list[Pair]:
    """``(English, "il" or "elle")`` pairs; any other pronoun is refused, naming the file and line."""
    path = Path(path)
    pairs: list[Pair] = []
    for number, english, pronoun in _numbered_pairs(path):
        if pronoun not in PRONOUNS:
            raise CorpusError(f"{path}, line {number}: the pronoun must be il or elle, found {pronoun!r}")
        pairs.append((english, pronoun))
    return pairs


def _numbered_pairs(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, English, second field)`` of each line that is not empty or a comment."""
    found = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            shape = "no tab" if len(fields) == 1 else f"{len(fields)} tab-separated fields"
            raise CorpusError(
                f"{path}, line {number}: expected two fields separated by a tab (English<TAB>...), found {shape}"
            )
        english, second = fields[0].strip(), fields[1].strip()
        if not english or not second:
            side = "English" if not english else "second"
            raise CorpusError(f"{path}, line {number}: the {side} field is empty")
        found.append((number, english, second))
    return found


def load_everyday_sets(data_dir: Path | str | None = None) -> tuple[list[Pair], list[Pair]]:
    """``everyday.tsv``'s (English, French) and ``pronouns.tsv``'s (English, pronoun) pairs.

    The data directory is found as for the built-in corpora (``--data-dir``, ``$SELFATTENTION_DATA``,
    ``../shared/data``).
    """
    root = find_data_dir(data_dir)
    return read_pairs(root / EVERYDAY_FILE), read_pronoun_set(root / PRONOUNS_FILE)


def capitals(text: str) -> str:
    """The sentence in CAPITALS."""
    return text.upper()


def lower_unpunctuated(text: str) -> str:
    """The sentence lower-cased, without its final . ! ? … (and the space French puts before ? and !)."""
    return _FINAL_PUNCTUATION.sub("", text.lower())


# name: how a sentence (and, to score fairly, its reference and translation) is changed
VARIANTS: dict[str, Callable[[str], str]] = {
    "CAPITALS": capitals,
    "lower-case, no final punctuation": lower_unpunctuated,
}
