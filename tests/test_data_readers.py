"""Reading corpus files: plain and gzip, any line ending, clear errors, and counted skips."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest

from selfattention.data.parallel import ReadReport, read_parallel, read_tsv
from selfattention.data.text_files import CorpusError, read_lines
from test_cli_translate import TINY_TOML, assert_clean_error, run

PARALLEL_LOGGER = "selfattention.data.parallel"


def write(path: Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path``, gzipped when the name ends in ``.gz``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


# --- read_lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lines.txt", "lines.txt.gz"])
def test_read_lines_plain_and_gzip(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, "Un homme.\nDeux chiens à l'été.\n« Oui » ?\n")
    assert read_lines(path) == ["Un homme.", "Deux chiens à l'été.", "« Oui » ?"]
    assert read_lines(str(path)) == read_lines(path)


def test_gzip_file_is_really_decompressed(tmp_path: Path) -> None:
    # The same bytes read through .gz and plain give the same lines, and the .gz file on disk
    # is not the text itself.
    text = "first\nsecond\n"
    plain = write(tmp_path / "a.txt", text)
    packed = write(tmp_path / "a.txt.gz", text)
    assert packed.read_bytes() != plain.read_bytes()
    assert read_lines(packed) == read_lines(plain) == ["first", "second"]


@pytest.mark.parametrize("name", ["bom.txt", "bom.txt.gz"])
def test_utf8_byte_order_mark_is_dropped(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"\xef\xbb\xbfhello\nworld\n")
    assert read_lines(path) == ["hello", "world"]


def test_only_a_leading_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "mid.txt", "a\n\ufeffb\n")
    assert read_lines(path) == ["a", "\ufeffb"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\r\nb\r\nc\r\n", ["a", "b", "c"]),  # Windows
        (b"a\rb\rc\r", ["a", "b", "c"]),  # old Mac: lone CR
        (b"a\r\nb\rc\nd\r\n", ["a", "b", "c", "d"]),  # mixed
        (b"a\nb", ["a", "b"]),  # final line without newline
        (b"a\r\nb", ["a", "b"]),
        (b"a\rb", ["a", "b"]),
        (b"a\n\nb\n", ["a", "", "b"]),  # a blank line is a line
        (b"a\r\n\r\nb", ["a", "", "b"]),
        (b"a\r\rb", ["a", "", "b"]),  # two lone CRs: a blank line between
        (b"a\n\n", ["a", ""]),  # one trailing blank line kept, no phantom line after the last newline
        (b"", []),
        (b"\n", [""]),
    ],
)
@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_line_endings(tmp_path: Path, data: bytes, expected: list[str], suffix: str) -> None:
    assert read_lines(write(tmp_path / f"f{suffix}", data)) == expected


def test_bom_with_crlf(tmp_path: Path) -> None:
    path = write(tmp_path / "w.txt.gz", b"\xef\xbb\xbfC'est l'\xc3\xa9t\xc3\xa9 !\r\nOui.\r\n")
    assert read_lines(path) == ["C'est l'été !", "Oui."]


def test_unicode_line_separators_do_not_split_lines(tmp_path: Path) -> None:
    # Aligned corpora count lines by \n (and \r); a U+2028, U+0085 or form feed inside a
    # sentence must not add a line, or the two sides of a parallel corpus would drift apart.
    path = write(tmp_path / "u.txt", "one\u2028still one\x85and\x0cone\ntwo\n")
    assert read_lines(path) == ["one\u2028still one\x85and\x0cone", "two"]


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b"fine\nalso fine\nbro\xffken\nnot reached\n")
    with pytest.raises(CorpusError) as info:
        read_lines(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "UTF-8" in message


def test_invalid_utf8_line_number_counts_crlf_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.txt", b"a\r\nb\rc\r\n\xc3\x28\n")
    with pytest.raises(CorpusError, match=r"line 4\b"):
        read_lines(path)


def test_latin1_file_is_rejected_not_misread(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", "café\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="line 1"):
        read_lines(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "train.en.gz"
    with pytest.raises(CorpusError) as info:
        read_lines(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        read_lines(tmp_path)


def test_corrupt_gzip_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.txt.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(CorpusError) as info:
        read_lines(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "truncated.txt.gz"
    path.write_bytes(gzip.compress(b"line\n" * 1000)[:-20])
    with pytest.raises(CorpusError) as info:
        read_lines(path)
    assert str(path) in str(info.value)


# --- read_parallel ------------------------------------------------------------------------


def test_read_parallel_pairs_lines(tmp_path: Path) -> None:
    src = write(tmp_path / "train.en.gz", "A man.\nTwo dogs.\nA girl runs.\n")
    tgt = write(tmp_path / "train.fr.gz", "Un homme.\r\nDeux chiens.\r\nUne fille court.")
    pairs, report = read_parallel(src, tgt)
    assert pairs == [("A man.", "Un homme."), ("Two dogs.", "Deux chiens."), ("A girl runs.", "Une fille court.")]
    assert isinstance(report, ReadReport)
    assert report.kept == 3
    assert report.skipped == {}


def test_read_parallel_unequal_line_counts(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", "1\n2\n3\n")
    tgt = write(tmp_path / "a.fr", "1\n2\n3\n4\n5\n")
    with pytest.raises(CorpusError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert str(src) in message
    assert str(tgt) in message
    assert "3 lines" in message
    assert "has 5" in message


def test_read_parallel_missing_side_is_named(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", "1\n")
    with pytest.raises(CorpusError) as info:
        read_parallel(src, tmp_path / "a.fr")
    assert str(tmp_path / "a.fr") in str(info.value)


def test_read_parallel_skips_and_counts_empty_and_long(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src_lines = ["keep one", "", "  ", "keep two", "x" * 11, "short", "exactly10!", "empty target"]
    tgt_lines = ["garde un", "vide", "   ", "  garde deux  ", "court", "y" * 12, "pile dix!!", "\t"]
    src = write(tmp_path / "s.en.gz", "\n".join(src_lines) + "\n")
    tgt = write(tmp_path / "s.fr.gz", "\n".join(tgt_lines) + "\n")
    caplog.set_level(logging.INFO, logger=PARALLEL_LOGGER)

    pairs, report = read_parallel(src, tgt, max_chars=10)

    # Surrounding whitespace is stripped; a pair exactly at the limit is kept.
    assert pairs == [("keep one", "garde un"), ("keep two", "garde deux"), ("exactly10!", "pile dix!!")]
    assert report.kept == 3
    assert report.skipped == {"empty": 3, "longer than 10 characters": 2}
    assert report.kept + sum(report.skipped.values()) == len(src_lines)

    records = [r for r in caplog.records if r.name == PARALLEL_LOGGER and r.levelno == logging.INFO]
    assert len(records) == 1
    text = records[0].getMessage()
    assert "s.en.gz" in text
    assert "s.fr.gz" in text
    assert "kept 3" in text
    assert "3 empty" in text
    assert "2 longer than 10 characters" in text


def test_read_parallel_without_limit_keeps_long_pairs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = write(tmp_path / "s.en", "x" * 5000 + "\n")
    tgt = write(tmp_path / "s.fr", "y\n")
    caplog.set_level(logging.INFO, logger=PARALLEL_LOGGER)
    pairs, report = read_parallel(src, tgt)
    assert pairs == [("x" * 5000, "y")]
    assert report.skipped == {}
    assert any("kept 1 pairs" in r.getMessage() for r in caplog.records if r.name == PARALLEL_LOGGER)


# --- read_tsv -----------------------------------------------------------------------------


def test_read_tsv_pairs(tmp_path: Path) -> None:
    path = write(tmp_path / "eng-fra.tsv.gz", "Go.\tVa !\nHi.\tSalut !\n")
    pairs, report = read_tsv(path)
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert report.kept == 2
    assert report.skipped == {}


def test_read_tsv_ignores_extra_fields(tmp_path: Path) -> None:
    attribution = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)"
    path = write(tmp_path / "fra.txt", f"Go.\tVa !\t{attribution}\nRun!\tCours !\textra\tmore\n")
    pairs, _ = read_tsv(path)
    assert pairs == [("Go.", "Va !"), ("Run!", "Cours !")]


def test_read_tsv_line_without_tab(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv.gz", "Go.\tVa !\nHi.\tSalut !\nno tab here\nOK.\tD'accord.\n")
    with pytest.raises(CorpusError) as info:
        read_tsv(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "tab" in message


def test_read_tsv_blank_lines_are_skipped_as_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "pairs.tsv", "Go.\tVa !\n\n   \nHi.\t\nWow!\tÇa alors !\n\t\n")
    caplog.set_level(logging.INFO, logger=PARALLEL_LOGGER)
    pairs, report = read_tsv(path)
    assert pairs == [("Go.", "Va !"), ("Wow!", "Ça alors !")]
    assert report.kept == 2
    assert report.skipped == {"empty": 4}
    messages = [r.getMessage() for r in caplog.records if r.name == PARALLEL_LOGGER]
    assert any("pairs.tsv" in m and "kept 2" in m and "4 empty" in m for m in messages)


def test_read_tsv_max_chars(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", "Go.\tVa !\nA much longer sentence.\tCourt.\n")
    pairs, report = read_tsv(path, max_chars=10)
    assert pairs == [("Go.", "Va !")]
    assert report.skipped == {"longer than 10 characters": 1}


def test_read_tsv_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "tatoeba" / "eng-fra.tsv.gz"
    with pytest.raises(CorpusError) as info:
        read_tsv(path)
    assert str(path) in str(info.value)


def test_read_tsv_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", b"Go.\tVa !\nHi.\tSal\xe9t !\n")
    with pytest.raises(CorpusError) as info:
        read_tsv(path)
    assert str(path) in str(info.value)
    assert "line 2" in str(info.value)


# --- oddities of real corpus files ----------------------------------------------------------


def test_a_bom_and_mixed_line_endings_on_one_side_keep_a_parallel_corpus_aligned(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", b"\xef\xbb\xbfOne.\r\nTwo.\rThree.\nFour.\r\n")
    tgt = write(tmp_path / "a.fr.gz", "Un.\nDeux.\nTrois.\nQuatre.")
    pairs, _ = read_parallel(src, tgt)
    assert pairs == [("One.", "Un."), ("Two.", "Deux."), ("Three.", "Trois."), ("Four.", "Quatre.")]


def test_read_tsv_with_a_bom_and_windows_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", b"\xef\xbb\xbfGo.\tVa !\r\nHi.\tSalut !\rRun!\tCours !\r\n")
    pairs, _ = read_tsv(path)
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut !"), ("Run!", "Cours !")]


def test_a_trailing_blank_line_on_one_side_is_a_line_and_the_counts_differ(tmp_path: Path) -> None:
    """Blank lines are lines (a pair with an empty side is skipped later), so the two files must agree."""
    src = write(tmp_path / "a.en", "One.\nTwo.\n")
    tgt = write(tmp_path / "a.fr", "Un.\nDeux.\n\n")
    with pytest.raises(CorpusError) as info:
        read_parallel(src, tgt)
    assert f"{src} has 2 lines but {tgt} has 3" in str(info.value)


def test_a_tab_inside_a_sentence_is_read_as_a_separator_and_the_line_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It cannot be told from a separator: field 2 stays the French side, the rest is ignored, with a warning."""
    path = write(tmp_path / "pairs.tsv", "Go.\tVa !\nHi.\tSalut\tà toi !\nRun!\tCours !\nNo\tway.\tPas question.\n")
    caplog.set_level(logging.WARNING, logger=PARALLEL_LOGGER)
    pairs, _ = read_tsv(path)
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut"), ("Run!", "Cours !"), ("No", "way.")]
    [warning] = [r.getMessage() for r in caplog.records if r.name == PARALLEL_LOGGER and r.levelno == logging.WARNING]
    assert f"{path}, line(s) 2, 4:" in warning
    assert "usual 2" in warning
    assert "tab inside a sentence" in warning


def test_a_third_field_on_every_line_is_an_attribution_and_gives_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "fra.txt", "Go.\tVa !\tCC-BY 2.0 #1\nHi.\tSalut !\tCC-BY 2.0 #2\n")
    caplog.set_level(logging.WARNING, logger=PARALLEL_LOGGER)
    assert read_tsv(path)[0] == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("reader", ["lines", "tsv", "parallel"])
def test_windows_1252_text_is_refused_naming_file_line_and_encoding(tmp_path: Path, reader: str) -> None:
    """Curly quotes and the euro sign of Windows-1252 (0x92, 0x93, 0x80) are not UTF-8."""
    english = write(tmp_path / "a.en", "It is.\tC'est.\nFine.\tBien.\n")
    french = write(tmp_path / "a.fr", "C'est.\tIt is.\n" + "C\u2019est \u201cbien\u201d, 5 \u20ac.\tFine.\n")
    french.write_bytes(french.read_bytes().decode("utf-8").encode("cp1252"))
    with pytest.raises(CorpusError) as info:
        {"lines": read_lines, "tsv": read_tsv, "parallel": lambda path: read_parallel(english, path)}[reader](french)
    message = str(info.value)
    assert f"{french}, line 2: invalid UTF-8" in message
    assert "b'\\x92'" in message
    assert "Windows-1252" in message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_is_refused_as_such(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "pairs.tsv", "\ufeffGo.\tVa !\n".encode(encoding))
    with pytest.raises(CorpusError) as info:
        read_tsv(path)
    assert str(info.value).startswith(f"{path}: UTF-16 text")


def test_training_on_unequal_files_stops_with_one_line_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command line: no traceback, the two files and their counts."""
    corpus = tmp_path / "data" / "multi30k"
    corpus.mkdir(parents=True)
    for stem, english, french in (("train", 3, 2), ("val", 1, 1)):
        write(corpus / f"{stem}.en.gz", "".join(f"A dog {i}.\n" for i in range(english)))
        write(corpus / f"{stem}.fr.gz", "".join(f"Un chien {i}.\n" for i in range(french)))
    args = ["train", "--config", str(TINY_TOML), "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data")]
    code, out, err = run(capsys, *args, "--no-progress", "--device", "cpu")
    assert_clean_error(code, out, err.splitlines()[-1] + "\n", "train.en.gz has 3 lines", "train.fr.gz has 2")
