"""A corpus as a configuration names it: a built-in corpus, a TSV file, or two aligned files.

``data.corpora``, ``data.valid_corpus`` (and ``train --train / --valid``) take any of:

- ``multi30k`` or ``tatoeba``: a built-in corpus, read from the data directory; its split
  (train, valid, test) is the corpus's own;
- ``path/to/pairs.tsv`` (or ``.tsv.gz``): one ``source<TAB>target`` pair a line;
- ``path/to/train.fr,path/to/train.en``: two aligned files, plain or gzipped, the source first.

A file is used as given, whole, for the set it is named in: a practitioner's validation file is
never re-split, and nothing of a training file goes elsewhere. Relative paths are read from the
working directory. Several validation corpora are joined with ``+``
(``"multi30k+tatoeba"``, ``"dev1.tsv+dev2.tsv"``).

The source and target languages say which side of a built-in corpus is which (Multi30k's
``train.fr.gz`` is the source of a French→English run); a file's sides are as the file has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfattention.data.corpora import CORPORA, Split, load_corpus
from selfattention.data.parallel import Pair, read_parallel, read_tsv
from selfattention.data.text_files import CorpusError

TSV_SUFFIXES = (".tsv", ".tsv.gz")


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: a built-in ``name``, or the ``paths`` of a TSV file or of two aligned files."""

    text: str  # as written in the configuration
    name: str | None = None
    paths: tuple[Path, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.name is not None


def parse_corpus(text: str) -> CorpusSpec:
    """Read one corpus as written in a configuration; a malformed one is refused, saying why."""
    text = text.strip()
    if not text:
        raise CorpusError("an empty corpus name: give a built-in corpus (multi30k, tatoeba), a .tsv file or SRC,TGT")
    if text in CORPORA:
        return CorpusSpec(text, name=text)
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 2 and all(parts):
        return CorpusSpec(text, paths=(Path(parts[0]), Path(parts[1])))
    if len(parts) > 2 or (len(parts) == 2 and not all(parts)):
        raise CorpusError(f"{text!r}: two aligned files are written SOURCE,TARGET (one comma, two paths)")
    path = Path(text)
    if path.name.endswith(TSV_SUFFIXES):
        return CorpusSpec(text, paths=(path,))
    if path.exists():
        raise CorpusError(
            f"{path}: a single file must be tab-separated pairs named .tsv or .tsv.gz; "
            f"for one sentence a line, give the source and target files as SOURCE,TARGET"
        )
    raise CorpusError(
        f"unknown corpus {text!r}: not a built-in corpus ({', '.join(CORPORA)}), and no such file; "
        "give a .tsv file or two aligned files as SOURCE,TARGET"
    )


def parse_corpora(text: str) -> list[CorpusSpec]:
    """Several corpora joined with ``+`` (a validation set made of several)."""
    return [parse_corpus(part) for part in text.split("+")]


def load_pairs(
    spec: CorpusSpec,
    split: Split,
    data_dir: Path | str | None = None,
    *,
    max_chars: int | None = None,
    source_lang: str = "en",
    target_lang: str = "fr",
) -> list[Pair]:
    """The (source, target) pairs of one corpus: a built-in corpus's ``split``, or a whole file."""
    if spec.name is not None:
        return load_corpus(
            spec.name, split, data_dir, max_chars=max_chars, source_lang=source_lang, target_lang=target_lang
        )
    if len(spec.paths) == 2:
        pairs, report = read_parallel(*spec.paths, max_chars=max_chars)
    else:
        pairs, report = read_tsv(spec.paths[0], max_chars=max_chars)
    if not pairs:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
        raise CorpusError(f"{spec.text}: no usable pairs ({reasons or 'the file is empty'})")
    return pairs
