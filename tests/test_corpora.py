"""The built-in corpora: where the data directory is, loading, the Tatoeba split, and downloading.

Everything here runs on small files the tests write themselves, and no test touches the network.
The last section checks the real corpora and is skipped when ``/work/shared/data`` is absent.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import selfattention.data.corpora as corpora
from selfattention.data.corpora import (
    ENV_VAR,
    MULTI30K_SPLITS,
    download_multi30k,
    find_data_dir,
    load_corpus,
    multi30k_comparable_references,
    tatoeba_split,
)
from selfattention.data.parallel import read_tsv
from selfattention.data.text_files import CorpusError, read_lines

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download a test does not fake fails loudly instead of reaching the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected network access: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode("utf-8")))
    return path


# --- find_data_dir ------------------------------------------------------------------------


@pytest.fixture
def three_dirs(tmp_path: Path) -> dict[str, Path]:
    """An explicit directory, an environment directory, and a project beside ../shared/data."""
    dirs = {
        "arg": tmp_path / "explicit",
        "env": tmp_path / "from-env",
        "default": tmp_path / "work" / "shared" / "data",
        "project": tmp_path / "work" / "main",
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    return dirs


def test_data_dir_argument_comes_first(three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(three_dirs["env"]))
    monkeypatch.chdir(three_dirs["project"])
    assert find_data_dir(three_dirs["arg"]) == three_dirs["arg"]
    assert find_data_dir(str(three_dirs["arg"])) == three_dirs["arg"]


def test_data_dir_environment_comes_second(three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(three_dirs["env"]))
    monkeypatch.chdir(three_dirs["project"])
    assert find_data_dir() == three_dirs["env"]


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the package were installed, not run from a project checkout."""
    monkeypatch.setattr(corpora, "CHECKOUT", tmp_path / "site-packages")


def test_data_dir_default_is_shared_data_beside_the_checkout_wherever_you_stand(
    three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, no_env: None, tmp_path: Path
) -> None:
    (three_dirs["project"] / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(corpora, "CHECKOUT", three_dirs["project"])
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert find_data_dir().resolve() == three_dirs["default"].resolve()


def test_data_dir_default_without_a_checkout_is_beside_cwd(
    three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, no_env: None, no_checkout: None
) -> None:
    monkeypatch.chdir(three_dirs["project"])
    assert find_data_dir().resolve() == three_dirs["default"].resolve()


def test_empty_environment_variable_counts_as_unset(
    three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, no_checkout: None
) -> None:
    monkeypatch.setenv(ENV_VAR, "")
    monkeypatch.chdir(three_dirs["project"])
    assert find_data_dir().resolve() == three_dirs["default"].resolve()


def test_missing_explicit_data_dir_is_an_error_not_a_fallback(
    three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An explicit choice that does not exist must not silently fall back to other data.
    monkeypatch.setenv(ENV_VAR, str(three_dirs["env"]))
    monkeypatch.chdir(three_dirs["project"])
    missing = three_dirs["arg"] / "nope"
    with pytest.raises(CorpusError) as info:
        find_data_dir(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "--data-dir" in message


def test_missing_environment_data_dir_is_named(three_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    missing = three_dirs["env"] / "nope"
    monkeypatch.setenv(ENV_VAR, str(missing))
    monkeypatch.chdir(three_dirs["project"])
    with pytest.raises(CorpusError) as info:
        find_data_dir()
    message = str(info.value)
    assert str(missing) in message
    assert ENV_VAR in message


def test_missing_default_data_dir_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None, no_checkout: None
) -> None:
    project = tmp_path / "lonely" / "project"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    with pytest.raises(CorpusError) as info:
        find_data_dir()
    message = str(info.value)
    expected = Path.cwd().parent / "shared" / "data"
    assert str(expected) in message
    assert "--data-dir" in message
    assert ENV_VAR in message


def test_data_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data.txt"
    not_a_dir.write_text("x")
    with pytest.raises(CorpusError, match="no data directory"):
        find_data_dir(not_a_dir)


# --- load_corpus --------------------------------------------------------------------------

MULTI30K_TINY = {
    "train": (
        ["A man runs.", "Two dogs play.", "A girl smiles."],
        ["Un homme court.", "Deux chiens jouent.", "Une fille sourit."],
    ),
    "val": (["A cat sleeps.", "   "], ["Un chat dort.", "Vide."]),
    "test_2016_flickr": (["A boy's hat."], ["Le chapeau d'un garçon."]),
}


@pytest.fixture
def multi30k_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for stem, (english, french) in MULTI30K_TINY.items():
        write_gz(root / "multi30k" / f"{stem}.en.gz", english)
        write_gz(root / "multi30k" / f"{stem}.fr.gz", french)
    write_gz(root / "multi30k" / "tok" / "test_2016_flickr.lc.norm.tok.fr.gz", ["le chapeau d&apos; un garçon ."])
    return root


def test_load_multi30k_splits(multi30k_dir: Path) -> None:
    assert load_corpus("multi30k", "train", multi30k_dir) == list(zip(*MULTI30K_TINY["train"], strict=True))
    assert load_corpus("multi30k", "valid", multi30k_dir) == [("A cat sleeps.", "Un chat dort.")]  # empty skipped
    assert load_corpus("multi30k", "test", str(multi30k_dir)) == [("A boy's hat.", "Le chapeau d'un garçon.")]


def test_load_multi30k_through_environment(multi30k_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(multi30k_dir))
    monkeypatch.chdir(tmp_path)
    assert len(load_corpus("multi30k", "train")) == 3


def test_load_multi30k_max_chars(multi30k_dir: Path) -> None:
    # "Deux chiens jouent." (19) and "Une fille sourit." (17) are over the limit.
    assert load_corpus("multi30k", "train", multi30k_dir, max_chars=16) == [("A man runs.", "Un homme court.")]


def test_multi30k_comparable_references(multi30k_dir: Path) -> None:
    assert multi30k_comparable_references(multi30k_dir) == ["le chapeau d&apos; un garçon ."]


def test_missing_multi30k_says_where_and_how(tmp_path: Path) -> None:
    root = tmp_path / "empty-data"
    root.mkdir()
    with pytest.raises(CorpusError) as info:
        load_corpus("multi30k", "train", root)
    message = str(info.value)
    assert "multi30k" in message
    assert str(root / "multi30k" / "train.en.gz") in message
    assert "download multi30k" in message


def test_missing_multi30k_french_side_is_named(multi30k_dir: Path) -> None:
    (multi30k_dir / "multi30k" / "train.fr.gz").unlink()
    with pytest.raises(CorpusError) as info:
        load_corpus("multi30k", "train", multi30k_dir)
    assert str(multi30k_dir / "multi30k" / "train.fr.gz") in str(info.value)


def test_missing_comparable_references_say_how(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as info:
        multi30k_comparable_references(tmp_path)
    assert "test_2016_flickr.lc.norm.tok.fr.gz" in str(info.value)
    assert "download multi30k" in str(info.value)


def test_missing_tatoeba_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus("tatoeba", "train", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "tatoeba" / "eng-fra.tsv.gz") in message
    assert "tatoeba.org" in message


def test_unknown_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as info:
        load_corpus("wmt14", "train", tmp_path)
    message = str(info.value)
    assert "wmt14" in message
    assert "multi30k" in message
    assert "tatoeba" in message


def synthetic_pairs(count: int, start: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct English sentences; every third has a second French rendering."""
    pairs = []
    for i in range(start, start + count):
        english = f"Sentence {i} is here."
        pairs.append((english, f"La phrase {i} est là."))
        if i % 3 == 0:
            pairs.append((english, f"Voici la phrase {i}."))
    return pairs


def test_load_tatoeba(tmp_path: Path) -> None:
    pairs = synthetic_pairs(300)
    lines = [f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" for i, (en, fr) in enumerate(pairs)]
    path = write_gz(tmp_path / "tatoeba" / "eng-fra.tsv.gz", [*lines, "", "Go.\t"])
    loaded = {split: load_corpus("tatoeba", split, tmp_path) for split in ("train", "valid", "test")}
    assert loaded == tatoeba_split(read_tsv(path)[0])
    assert sorted(p for split in loaded.values() for p in split) == sorted(pairs)
    assert all(loaded.values()), "300 sentences should leave something in every split"


def test_load_tatoeba_max_chars(tmp_path: Path) -> None:
    write_gz(tmp_path / "tatoeba" / "eng-fra.tsv.gz", ["Go.\tVa !", "This sentence is rather long.\tCourt."])
    everything = [p for s in ("train", "valid", "test") for p in load_corpus("tatoeba", s, tmp_path, max_chars=10)]
    assert everything == [("Go.", "Va !")]


# --- tatoeba_split ------------------------------------------------------------------------


def split_of(splits: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """English sentence -> its split; fails if any sentence is in two splits."""
    where: dict[str, str] = {}
    for name, pairs in splits.items():
        for english, _ in pairs:
            assert where.setdefault(english, name) == name, f"{english!r} is in {where[english]} and {name}"
    return where


def test_tatoeba_split_is_deterministic() -> None:
    pairs = synthetic_pairs(500)
    assert tatoeba_split(pairs) == tatoeba_split(list(pairs))


def test_tatoeba_split_is_stable_across_versions_and_processes() -> None:
    # Pinned assignments: the split comes from a SHA-256 of the sentence, not Python's
    # per-process hash(), and must not change from one release to the next, or test sentences
    # of an old run would leak into the training data of a new one.
    pinned = {
        "Sentence number 0.": "train",
        "Sentence number 1.": "train",
        "Sentence number 9.": "valid",
        "Sentence number 28.": "valid",
        "Sentence number 5.": "test",
        "Sentence number 6.": "test",
    }
    assert split_of(tatoeba_split([(en, "fr") for en in pinned])) == pinned


def test_tatoeba_split_keeps_every_pair_once_in_order() -> None:
    pairs = synthetic_pairs(400)
    position = {pair: i for i, pair in enumerate(pairs)}
    for split in tatoeba_split(pairs).values():  # each split keeps the file's order
        positions = [position[p] for p in split]
        assert positions == sorted(positions)
    with_duplicates = [*pairs, pairs[0], pairs[-1]]  # exact duplicate pairs are kept, not merged
    splits = tatoeba_split(with_duplicates)
    assert collections.Counter(p for s in splits.values() for p in s) == collections.Counter(with_duplicates)


def test_every_english_sentence_in_exactly_one_split() -> None:
    pairs = synthetic_pairs(2000)
    splits = tatoeba_split(pairs)
    where = split_of(splits)  # asserts no sentence is in two splits
    assert set(where) == {en for en, _ in pairs}
    # All renderings of one English sentence land together.
    renderings = collections.defaultdict(set)
    for en, fr in pairs:
        renderings[en].add(fr)
    for name, split in splits.items():
        for en, _ in split:
            assert {fr for e, fr in split if e == en} == renderings[en], name


def test_tatoeba_split_shares_are_about_90_5_5() -> None:
    pairs = synthetic_pairs(2000)
    assert len(pairs) > 2600
    where = split_of(tatoeba_split(pairs))
    counts = collections.Counter(where.values())
    total = len(where)
    assert total == 2000
    assert 0.87 <= counts["train"] / total <= 0.93
    assert 0.03 <= counts["valid"] / total <= 0.07
    assert 0.03 <= counts["test"] / total <= 0.07


def test_tatoeba_split_does_not_move_sentences_when_data_changes() -> None:
    before = split_of(tatoeba_split(synthetic_pairs(1000)))
    # Remove every other sentence and add 1000 new ones (shuffled in among the old).
    kept = [p for p in synthetic_pairs(1000) if int(p[0].split()[1]) % 2 == 0]
    extra = synthetic_pairs(1000, start=5000)
    changed = [p for pair in zip(kept, extra, strict=False) for p in pair] + extra[len(kept) :]
    after = split_of(tatoeba_split(changed))
    common = set(before) & set(after)
    assert len(common) == 500
    assert {en: after[en] for en in common} == {en: before[en] for en in common}


def test_tatoeba_split_of_nothing() -> None:
    assert tatoeba_split([]) == {"train": [], "valid": [], "test": []}


# --- download_multi30k (faked network) ----------------------------------------------------

GOOD = {"small.en.gz": gzip.compress(b"A man.\n"), "tok/small.lc.tok.fr.gz": gzip.compress(b"un homme .\n")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns: a context manager with ``read``."""


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    files = {
        "small.en.gz": ("raw", sha256(GOOD["small.en.gz"])),
        "tok/small.lc.tok.fr.gz": ("tok", sha256(GOOD["tok/small.lc.tok.fr.gz"])),
    }
    monkeypatch.setattr(corpora, "MULTI30K_FILES", files)
    return files


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Serves ``GOOD`` by URL unless a test overrides an entry; records every request."""
    served: dict[str, bytes] = {
        corpora.MULTI30K_URL.format(folder="raw", name="small.en.gz"): GOOD["small.en.gz"],
        corpora.MULTI30K_URL.format(folder="tok", name="small.lc.tok.fr.gz"): GOOD["tok/small.lc.tok.fr.gz"],
    }
    requests: list[str] = []

    def urlopen(url: str, timeout: float | None = None) -> FakeResponse:
        requests.append(url)
        if url not in served:
            raise urllib.error.URLError(f"404 for {url}")
        return FakeResponse(served[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return {"served": served, "requests": requests}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_download_writes_checked_files(tmp_path: Path, small_files: object, fake_server: dict[str, Any]) -> None:
    root = download_multi30k(tmp_path)
    assert root == tmp_path / "multi30k"
    assert files_under(root) == ["small.en.gz", "tok/small.lc.tok.fr.gz"]
    assert (root / "small.en.gz").read_bytes() == GOOD["small.en.gz"]
    assert (root / "tok" / "small.lc.tok.fr.gz").read_bytes() == GOOD["tok/small.lc.tok.fr.gz"]
    assert fake_server["requests"] == [
        "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/small.en.gz",
        "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/tok/small.lc.tok.fr.gz",
    ]


def test_download_checksum_mismatch_keeps_nothing(
    tmp_path: Path, small_files: object, fake_server: dict[str, Any]
) -> None:
    url = corpora.MULTI30K_URL.format(folder="raw", name="small.en.gz")
    fake_server["served"][url] = gzip.compress(b"A tampered man.\n")
    with pytest.raises(CorpusError) as info:
        download_multi30k(tmp_path)
    message = str(info.value)
    assert "checksum" in message
    assert url in message
    assert sha256(GOOD["small.en.gz"]) in message
    assert files_under(tmp_path) == []  # neither the file nor a .part is left


def test_download_skips_files_already_present(tmp_path: Path, small_files: object, fake_server: dict[str, Any]) -> None:
    present = tmp_path / "multi30k" / "small.en.gz"
    present.parent.mkdir(parents=True)
    present.write_bytes(GOOD["small.en.gz"])
    # If it were fetched again, the download would fail its checksum.
    fake_server["served"][corpora.MULTI30K_URL.format(folder="raw", name="small.en.gz")] = b"wrong"
    download_multi30k(tmp_path)
    assert fake_server["requests"] == [corpora.MULTI30K_URL.format(folder="tok", name="small.lc.tok.fr.gz")]
    assert present.read_bytes() == GOOD["small.en.gz"]

    fake_server["requests"].clear()
    download_multi30k(tmp_path)  # everything present: no request at all
    assert fake_server["requests"] == []


def test_download_replaces_a_corrupt_file(tmp_path: Path, small_files: object, fake_server: dict[str, Any]) -> None:
    corrupt = tmp_path / "multi30k" / "small.en.gz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"half a file")
    download_multi30k(tmp_path)
    assert corrupt.read_bytes() == GOOD["small.en.gz"]
    assert not list(tmp_path.rglob("*.part"))


def test_download_network_error_names_url(tmp_path: Path, small_files: object, fake_server: dict[str, Any]) -> None:
    url = corpora.MULTI30K_URL.format(folder="tok", name="small.lc.tok.fr.gz")
    del fake_server["served"][url]
    with pytest.raises(CorpusError) as info:
        download_multi30k(tmp_path)
    assert url in str(info.value)
    assert files_under(tmp_path / "multi30k") == ["small.en.gz"]


def test_multi30k_file_list_covers_every_split() -> None:
    # Every file load_corpus and multi30k_comparable_references read can be downloaded.
    names = set(corpora.MULTI30K_FILES)
    for stem in MULTI30K_SPLITS.values():
        assert {f"{stem}.en.gz", f"{stem}.fr.gz"} <= names
    assert "tok/test_2016_flickr.lc.norm.tok.fr.gz" in names
    for name, (folder, digest) in corpora.MULTI30K_FILES.items():
        assert folder == ("tok" if name.startswith("tok/") else "raw")
        assert len(digest) == 64
        int(digest, 16)


# --- the real corpora (optional) ----------------------------------------------------------

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real corpora not available at {SHARED_DATA} (optional data-dependent tests)"
)


@needs_shared_data
@pytest.mark.parametrize(("split", "count"), [("train", 29000), ("valid", 1014), ("test", 1000)])
def test_real_multi30k_line_counts(split: str, count: int) -> None:
    stem = MULTI30K_SPLITS[split]
    assert len(read_lines(SHARED_DATA / "multi30k" / f"{stem}.en.gz")) == count
    assert len(read_lines(SHARED_DATA / "multi30k" / f"{stem}.fr.gz")) == count
    assert len(load_corpus("multi30k", split, SHARED_DATA)) == count


@needs_shared_data
def test_real_multi30k_matches_published_checksums() -> None:
    for name, (_, digest) in corpora.MULTI30K_FILES.items():
        assert sha256((SHARED_DATA / "multi30k" / name).read_bytes()) == digest, name


@needs_shared_data
def test_real_multi30k_comparable_references() -> None:
    from selfattention.evaluation import comparable_bleu

    references = multi30k_comparable_references(SHARED_DATA)
    raw = [fr for _, fr in load_corpus("multi30k", "test", SHARED_DATA)]
    assert len(references) == len(raw) == 1000
    # Lower-casing and Moses-tokenising the raw references reproduces the official tokenised
    # ones (up to one line where the official normalisation moved a quote past a full stop).
    assert comparable_bleu(raw, references) > 99.9


@needs_shared_data
def test_real_tatoeba_split_is_disjoint_and_deterministic() -> None:
    splits = {split: load_corpus("tatoeba", split, SHARED_DATA) for split in ("train", "valid", "test")}
    english = {name: {en for en, _ in pairs} for name, pairs in splits.items()}
    assert not english["train"] & english["valid"]
    assert not english["train"] & english["test"]
    assert not english["valid"] & english["test"]
    everything = read_tsv(SHARED_DATA / "tatoeba" / "eng-fra.tsv.gz")[0]
    assert sum(len(pairs) for pairs in splits.values()) == len(everything)
    assert tatoeba_split(everything) == splits
    distinct = sum(len(s) for s in english.values())
    assert 0.88 <= len(english["train"]) / distinct <= 0.92
    assert 0.04 <= len(english["valid"]) / distinct <= 0.06
    assert 0.04 <= len(english["test"]) / distinct <= 0.06
