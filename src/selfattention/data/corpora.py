"""The built-in corpora, ``multi30k`` and ``tatoeba``, read from a data directory.

The data directory is, in order: the ``data_dir`` argument (``--data-dir``), the environment
variable ``SELFATTENTION_DATA``, or ``shared/data`` beside the project checkout (then beside the
working directory) when it exists. Its layout is that of the public originals:

    multi30k/{train,val,test_2016_flickr}.{en,fr}.gz
    multi30k/tok/test_2016_flickr.lc.norm.tok.{en,fr}.gz
    tatoeba/eng-fra.tsv.gz        (English<TAB>French pairs)

Multi30k can be downloaded when the machine is online (:func:`download_multi30k`); every file
is checked against its SHA-256 before it is used. Tatoeba has no official split, so
:func:`tatoeba_split` makes a deterministic one by distinct English sentence.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path
from typing import Literal

from selfattention.data.parallel import Pair, read_parallel, read_tsv
from selfattention.data.text_files import CorpusError, read_lines

log = logging.getLogger(__name__)

ENV_VAR = "SELFATTENTION_DATA"
Split = Literal["train", "valid", "test"]
CORPORA = ("multi30k", "tatoeba")
LANGUAGES = ("en", "fr")  # the languages of the built-in corpora

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/{folder}/{name}"
MULTI30K_FILES: dict[str, tuple[str, str]] = {
    # name: (folder in the public repository, SHA-256)
    "train.en.gz": ("raw", "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f"),
    "train.fr.gz": ("raw", "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c"),
    "val.en.gz": ("raw", "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28"),
    "val.fr.gz": ("raw", "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9"),
    "test_2016_flickr.en.gz": ("raw", "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9"),
    "test_2016_flickr.fr.gz": ("raw", "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90"),
    "tok/test_2016_flickr.lc.norm.tok.en.gz": (
        "tok",
        "fd59afddfcc2c50e24cffdc01534f500b3007e3ff1b6ea40dd830ec018e9955e",
    ),
    "tok/test_2016_flickr.lc.norm.tok.fr.gz": (
        "tok",
        "40a5a49ea293cb4a16a09af0118c6ada289ddeaf3a927dbf02b5637a6be19dd7",
    ),
}
MULTI30K_SPLITS: dict[str, str] = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
TATOEBA_FILE = "tatoeba/eng-fra.tsv.gz"
TATOEBA_SHARES = (0.9, 0.05, 0.05)  # train, valid, test: by distinct English sentence


def find_data_dir(data_dir: Path | str | None = None) -> Path:
    """Where the built-in corpora are: the argument, ``$SELFATTENTION_DATA``, or a ``shared/data`` found.

    Without either, ``../shared/data`` is looked for beside the project checkout this package runs
    from, then beside the working directory; the error names every place looked.
    """
    if data_dir is not None:
        candidates = [("--data-dir", Path(data_dir))]
    elif os.environ.get(ENV_VAR):
        candidates = [(f"${ENV_VAR}", Path(os.environ[ENV_VAR]))]
    else:
        candidates = [(f"beside {place}", place.parent / "shared" / "data") for place in _default_places()]
    for _, path in candidates:
        if path.is_dir():
            return path
    looked = "; ".join(f"{path} ({origin})" for origin, path in candidates)
    raise CorpusError(
        f"no data directory: looked at {looked}; pass --data-dir DIR or set {ENV_VAR}. "
        "Multi30k can be fetched with `selfattention download multi30k --data-dir DIR`; "
        'your own files need no data directory (data.corpora = ["train.tsv"]).'
    )


CHECKOUT = Path(__file__).resolve().parents[3]  # the project, when this package runs from a checkout (src/ layout)


def _default_places() -> list[Path]:
    """The project checkout (when this package runs from one), then the working directory."""
    places = [CHECKOUT] if (CHECKOUT / "pyproject.toml").is_file() else []
    return places + ([Path.cwd()] if Path.cwd() not in places else [])


def load_corpus(
    name: str,
    split: Split,
    data_dir: Path | str | None = None,
    *,
    max_chars: int | None = None,
    source_lang: str = "en",
    target_lang: str = "fr",
) -> list[Pair]:
    """(source, target) pairs of a built-in corpus and split, the sides chosen by the languages.

    Both corpora hold English and French here: ``source_lang="fr", target_lang="en"`` reads them
    the other way round. Tatoeba's split is by the English sentence whichever side it is on.
    """
    if split not in MULTI30K_SPLITS:
        raise CorpusError(f"unknown split {split!r}; choose train, valid or test")
    languages = {source_lang, target_lang}
    if name in CORPORA and (languages != set(LANGUAGES) or source_lang == target_lang):
        raise CorpusError(
            f"corpus {name!r} holds {' and '.join(LANGUAGES)}, not {source_lang}→{target_lang}; "
            'for another language pair name your own files (data.corpora = ["train.tsv"])'
        )
    root = find_data_dir(data_dir)
    if name == "multi30k":
        stem = MULTI30K_SPLITS[split]
        src, tgt = root / "multi30k" / f"{stem}.{source_lang}.gz", root / "multi30k" / f"{stem}.{target_lang}.gz"
        _require(src, "multi30k")
        _require(tgt, "multi30k")
        return read_parallel(src, tgt, max_chars=max_chars)[0]
    if name == "tatoeba":
        path = root / TATOEBA_FILE
        _require(path, "tatoeba")
        pairs = tatoeba_split(read_tsv(path, max_chars=max_chars)[0])[split]  # English first in the file
        return pairs if source_lang == "en" else [(target, source) for source, target in pairs]
    raise CorpusError(f"unknown corpus {name!r}; built-in corpora are {', '.join(CORPORA)}")


def multi30k_comparable_references(data_dir: Path | str | None = None, language: str = "fr") -> list[str]:
    """The official lower-cased, Moses-tokenised references of test_2016_flickr in ``language``."""
    path = find_data_dir(data_dir) / "multi30k" / "tok" / f"test_2016_flickr.lc.norm.tok.{language}.gz"
    _require(path, "multi30k")
    return read_lines(path)


def tatoeba_split(pairs: list[Pair]) -> dict[Split, list[Pair]]:
    """Split by distinct English sentence: a stable hash of the sentence picks its split.

    Every rendering of one English sentence lands in the same split, and the split of a
    sentence never depends on the rest of the file, so adding data moves nothing.
    """
    splits: dict[Split, list[Pair]] = {"train": [], "valid": [], "test": []}
    train_share, valid_share, _ = TATOEBA_SHARES
    for pair in pairs:
        digest = hashlib.sha256(pair[0].encode("utf-8")).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        if position < train_share:
            splits["train"].append(pair)
        elif position < train_share + valid_share:
            splits["valid"].append(pair)
        else:
            splits["test"].append(pair)
    return splits


def download_multi30k(data_dir: Path | str) -> Path:
    """Fetch Multi30k (English and French) from its public repository, checking each file."""
    root = Path(data_dir) / "multi30k"
    for name, (folder, sha256) in MULTI30K_FILES.items():
        target = root / name
        if target.is_file():
            if _sha256(target) == sha256:
                continue
            target.unlink()  # a damaged copy: fetch it again rather than keep it
        url = MULTI30K_URL.format(folder=folder, name=Path(name).name)
        log.info("downloading %s", url)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                tmp.write_bytes(response.read())
        except OSError as error:
            raise CorpusError(f"cannot download {url}: {error}") from None
        actual = _sha256(tmp)
        if actual != sha256:
            tmp.unlink()
            raise CorpusError(f"{url}: checksum mismatch (expected SHA-256 {sha256}, got {actual}); file not kept")
        tmp.replace(target)
    return root


def _require(path: Path, corpus: str) -> None:
    if path.is_file():
        return
    how = (
        "fetch it with `selfattention download multi30k --data-dir DIR`"
        if corpus == "multi30k"
        else "get English-French pairs from tatoeba.org (e.g. the tab-separated fra.txt) and save them, gzipped, there"
    )
    raise CorpusError(f"corpus {corpus!r} not found: looked for {path}; {how}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
