"""Bad input to `translate`, `explain`, `attention`, `context` and the web API.

Every case ends in a defined answer (exit status 0, or HTTP 200, with the output checked) or a
clear refusal (exit status 2 and one ``error:`` line, or HTTP 422 with a ``detail`` sentence),
never a traceback, a server error, a raw control character in the output, or a NaN. All of it runs
on the tiny trained model of ``conftest.py``; docs/RELIABILITY.md lists each case.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import subprocess
import sys
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import synthetic_pairs
from selfattention.cli import main
from selfattention.decoding import (
    MAX_SENTENCE_CHARS,
    DecodingConfig,
    InputError,
    Translator,
    check_sentence,
    split_sentences,
)
from selfattention.decoding.c_translator import CTranslator

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

OK = "ok"  # the expected outcome "answered" (exit status 0 / HTTP 200)


def ten_thousand_words() -> str:
    """At least 10,000 words of the tiny model's kind of English, in sentences, on one line."""
    sentences: list[str] = []
    words = 0
    rng = random.Random(10_000)
    while words < 10_000:
        (sentence, _), *_ = synthetic_pairs(1, rng)
        sentences.append(sentence)
        words += len(sentence.split())
    return " ".join(sentences)


TEN_THOUSAND_WORDS = ten_thousand_words()
ONE_LONG_SENTENCE = " ".join(["the red dog runs"] * 2500)  # 10,000 words and no sentence end
LIMIT = f"the limit is {MAX_SENTENCE_CHARS} characters"
EMPTY = "is empty: give a sentence to translate"
NOT_UNICODE = "is not valid Unicode"


@dataclass(frozen=True)
class Case:
    """One bad input and the expected outcome of each face: OK, or a phrase of the refusal."""

    name: str
    text: str
    translate: str  # the translate command
    sentence: str  # explain, attention and the web endpoints, which show one sentence
    context: str  # context, with the text inside a sentence that holds the word (see context_sentences)


CASES = [
    Case("empty", "", OK, EMPTY, OK),
    Case("whitespace only", " \t \r ", OK, EMPTY, OK),
    Case("10,000 words in sentences", TEN_THOUSAND_WORDS, OK, LIMIT, LIMIT),
    Case("10,000 words, one sentence", ONE_LONG_SENTENCE, "reads at most 1023 at once", LIMIT, LIMIT),
    Case("emoji", "The dog 🐶 runs 👍🏽.", OK, OK, OK),
    Case("NUL", "The dog runs\x00.", OK, OK, OK),
    Case("ANSI escape", "\x1b[31mThe dog runs.\x1b[0m", OK, OK, OK),
    Case("DEL", "The\x7f dog runs.", OK, OK, OK),
    Case("zero-width space inside", "The\u200bdog runs.", OK, OK, OK),
    Case("zero-width space only", "\u200b", OK, "has no characters the model can read", OK),
    Case("Arabic (right to left)", "الكلب يركض في الحديقة.", OK, OK, OK),
    Case("Hebrew (right to left)", "הכלב רץ בפארק.", OK, OK, OK),
    Case("right-to-left override", "The \u202edog runs.", OK, OK, OK),
    Case("CJK (unseen characters)", "狗在公园里跑。", OK, OK, OK),
    Case("math symbols (unseen)", "∀x ∈ ℝ: x² ≥ 0, ∑∫√∞", OK, OK, OK),
    Case(
        "lone surrogate (invalid UTF-8 in an argument)", "The dog \udcff runs.", NOT_UNICODE, NOT_UNICODE, NOT_UNICODE
    ),
]
IDS = [case.name for case in CASES]
# Decoding is bounded so that 10,000 words stay cheap: the tiny model never ends a sentence by itself.
BOUNDED = ["--beam", "1", "--max-len-a", "0", "--max-len-b", "2", "--batch-size", "256"]
BOUNDED_CONFIG = DecodingConfig(beam_size=1, max_len_a=0, max_len_b=2, batch_size=256)


def context_sentences(text: str) -> list[str]:
    """The odd text inside a sentence that holds the word "dog", and a plain second sentence."""
    return [f"The dog {text}", "The dog sleeps."]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_no_nan(text: str) -> None:
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), text[:500]


def assert_outcome(command: str, expected: str, code: int, out: str, err: str) -> None:
    """The expected answer or refusal, and never a traceback, a NaN or a raw control character."""
    assert "Traceback" not in err and "Traceback" not in out
    assert_no_nan(out + err)
    raw = [ch for ch in out + err if unicodedata.category(ch) == "Cc" and ch != "\n"]
    assert raw == [], f"raw control characters in the output: {raw!r}"
    if expected == OK:
        assert code == 0, err
        assert out.endswith("\n")
    else:
        assert code == 2, (code, out[:200])
        assert out == ""
        assert err.startswith(f"selfattention {command}: error: ")
        assert err.count("\n") == 1, err
        assert expected in err, err


# --- the commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_translate(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), *BOUNDED, case.text)
    assert_outcome("translate", case.translate, code, out, err)
    if case.translate == OK:
        assert len(out.split("\n")) == 2  # one input, one output line: a long text is never split across lines
        if len(case.text) < MAX_SENTENCE_CHARS:
            expected = Translator.load(tiny_model_dir).translate([case.text], BOUNDED_CONFIG)
            assert out == expected[0] + "\n"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_explain(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    code, out, err = run(capsys, "explain", case.text, "--model", str(tiny_model_dir))
    assert_outcome("explain", case.sentence, code, out, err)
    if case.sentence == OK:
        assert "Translation: " in out
        assert "Step 3: softmax" in out and "Reading the rows" in out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_attention(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    picture = tmp_path / "attention.png"
    argv = ["attention", case.text, "--out", str(picture), "--beam", "1", "--model", str(tiny_model_dir)]
    code, out, err = run(capsys, *argv)
    assert_outcome("attention", case.sentence, code, out, err)
    assert picture.is_file() is (case.sentence == OK)
    if case.sentence == OK:
        assert out.splitlines()[0] == str(picture)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_context(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], case: Case) -> None:
    argv = ["context", *context_sentences(case.text), "--word", "dog", "--model", str(tiny_model_dir)]
    code, out, err = run(capsys, *argv)
    assert_outcome("context", case.context, code, out, err)
    if case.context == OK:
        similarities = re.findall(r"^\s+(?:embedding|layer \d+)\s+(-?\d+\.\d+)$", out, re.MULTILINE)
        assert len(similarities) == 2  # the embedding and the tiny model's one layer
        assert all(-1.001 <= float(value) <= 1.001 for value in similarities)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", TEN_THOUSAND_WORDS, "--kind", "cross", "--target", "Le chien."], LIMIT),
        (["explain", "The dog runs.", "--kind", "cross", "--target", TEN_THOUSAND_WORDS], f"--target is {len(TEN_THOUSAND_WORDS)} characters"),
        (["context", "The dog runs.", "The dog sleeps.", "\u200b", "--word", "dog"], "sentence 3 has no characters"),
        (["context", "The dog runs.", "The dog \udcff.", "--word", "dog"], "sentence 2 is not valid Unicode"),
        (["context", "", "The dog sleeps.", "--word", "dog"], "sentence 1 is empty"),
        (["heads", "", "--from", "it", "--to", "dog"], EMPTY),
        (["heads", ONE_LONG_SENTENCE, "--from", "it", "--to", "dog"], LIMIT),
    ],
    ids=["explain long", "explain long target", "context unreadable", "context surrogate", "context empty",
         "heads empty", "heads long"],
)  # fmt: skip
def test_other_arguments_are_checked_the_same_way(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv, "--model", str(tiny_model_dir))
    assert_outcome(argv[0], message, code, out, err)


def test_explain_random_model_drops_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    """The untrained stand-in splits words itself: control and zero-width characters are dropped there too."""
    code, out, err = run(capsys, "explain", "\x1b[31mThe\x00 dog\u200b 🐶 الكلب\x7f", "--random")
    assert_outcome("explain", OK, code, out, err)
    assert "'dog'" in out and "'🐶'" in out and "'الكلب'" in out
    code, out, err = run(capsys, "explain", "\x00\u200b\x7f", "--random")
    assert_outcome("explain", "has no characters the model can read", code, out, err)


# --- long text: split into sentences, never cut -------------------------------------------------


def test_translate_splits_10000_words_into_sentences_and_keeps_every_one(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a "translation" that echoes its source, 10,000 words come back whole, in order."""
    tokenizer = Translator.load(tiny_model_dir).tokenizer
    limit = Translator.load(tiny_model_dir).max_source_length
    assert len(tokenizer.encode(TEN_THOUSAND_WORDS)) > limit  # too long to read at once
    seen: list[list[int]] = []

    def echo(self: CTranslator, sources: list[list[int]], config: DecodingConfig) -> list[list[int]]:
        seen.extend(list(source) for source in sources)
        return [list(source) for source in sources]

    monkeypatch.setattr(CTranslator, "translate_ids", echo)  # the command's; --workers 1 forks none
    model = str(tiny_model_dir)
    code, out, err = run(capsys, "translate", "--model", model, "--workers", "1", TEN_THOUSAND_WORDS, "The dog runs.")
    assert code == 0, err
    assert out == f"{TEN_THOUSAND_WORDS}\nThe dog runs.\n"  # every word, in order, on its own line
    sentences = split_sentences(TEN_THOUSAND_WORDS)
    assert len(sentences) == TEN_THOUSAND_WORDS.count(".") > 1000
    expected = [*tokenizer.encode_batch(sentences), tokenizer.encode("The dog runs.")]
    assert sorted(seen) == sorted(expected)  # each sentence translated once, each within the model's limit
    assert max(len(source) for source in seen) <= limit


def test_the_library_refuses_long_text_unless_asked_to_split(tiny_model_dir: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    with pytest.raises(InputError, match=r"input 2 is \d+ subword pieces long; this model reads at most 1023"):
        translator.translate(["The dog runs.", TEN_THOUSAND_WORDS], BOUNDED_CONFIG)
    with pytest.raises(InputError, match=r"a sentence of input 1 is \d+ subword pieces long; this model reads at most"):
        translator.translate([ONE_LONG_SENTENCE], BOUNDED_CONFIG, split_long=True)
    short = ["The red dog runs. The cat sleeps.", "The dog runs."]  # within the limit: translated whole
    assert translator.translate(short, BOUNDED_CONFIG, split_long=True) == translator.translate(short, BOUNDED_CONFIG)


def test_progress_counts_texts_also_when_they_are_split(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Translator, "translate_ids", lambda self, sources, config: [list(s) for s in sources])
    counted: list[int] = []
    texts = ["", TEN_THOUSAND_WORDS, "The dog runs."]
    outputs = Translator.load(tiny_model_dir).translate(texts, progress=counted.append, split_long=True)
    assert outputs == texts
    assert sum(counted) == len(texts)
    assert counted[0] == 1  # the empty text, at once


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("The dog runs. The cat sleeps!  Is it? Yes…", ["The dog runs.", "The cat sleeps!", "Is it?", "Yes…"]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("It costs 3.50 euros, e.g. here.", ["It costs 3.50 euros, e.g.", "here."]),  # the rule is simple
        ("No end at all", ["No end at all"]),
        ("狗在跑。 猫在睡。", ["狗在跑。", "猫在睡。"]),
        ("هل هو؟ نعم.", ["هل هو؟", "نعم."]),
        ("  \n ", []),
        ("Wait...\nWhat?!", ["Wait...", "What?!"]),
    ],
)
def test_split_sentences_keeps_the_text(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
    assert re.sub(r"\s", "", "".join(sentences)) == re.sub(r"\s", "", text)  # no character lost


def test_split_sentences_loses_no_character_of_10000_words() -> None:
    sentences = split_sentences(TEN_THOUSAND_WORDS)
    assert " ".join(sentences) == TEN_THOUSAND_WORDS
    assert len(TEN_THOUSAND_WORDS.split()) >= 10_000


@pytest.mark.parametrize(
    ("command", "policy"),
    [
        ("translate", "split into sentences"),
        ("explain", f"at most {MAX_SENTENCE_CHARS} characters"),
        ("attention", f"at most {MAX_SENTENCE_CHARS} characters"),
        ("heads", f"at most {MAX_SENTENCE_CHARS} characters"),
        ("context", f"at most {MAX_SENTENCE_CHARS} characters"),
    ],
)
def test_help_states_the_long_input_policy(capsys: pytest.CaptureFixture[str], command: str, policy: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert policy in " ".join(capsys.readouterr().out.split())


def test_check_sentence_names_each_problem() -> None:
    assert check_sentence("  The dog runs.\n") == "The dog runs."
    with pytest.raises(InputError, match="sentence 3 is empty"):
        check_sentence(" ", what="sentence 3")
    with pytest.raises(InputError, match="text is 11 characters long; the limit is 10 characters"):
        check_sentence("x" * 11, max_chars=10)
    with pytest.raises(InputError, match="character 2 is U\\+D800"):
        check_sentence("a\ud800")
    with pytest.raises(InputError, match="no characters the model can read"):
        check_sentence("\u200b", encode=lambda text: [])


# --- standard input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\xff", "line 1: invalid UTF-8 at byte 1"),
        (b"The dog.\nThe \xe2\x82 cat.\n", "line 2: invalid UTF-8 at byte 5"),  # a cut multi-byte character
        (b"\xc0\xafetc\n", "line 1: invalid UTF-8 at byte 1"),  # an overlong encoding of "/"
        (b"\xed\xa0\x80\n", "line 1: invalid UTF-8 at byte 1"),  # an encoded surrogate (CESU-8)
        (b"\xff\xfeT\x00h\x00e\x00\n\x00", "line 1: invalid UTF-8 at byte 1"),  # UTF-16 with its byte-order mark
    ],
    ids=["lone byte", "cut character", "overlong", "surrogate", "UTF-16"],
)
def test_translate_refuses_invalid_utf8_on_stdin(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data: bytes, where: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir))
    assert_outcome("translate", f"standard input, {where}", code, out, err)


def test_translate_takes_every_odd_line_of_stdin_one_for_one(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """All the answered cases at once, 10,000 words among them, behind a UTF-8 byte-order mark."""
    texts = [case.text for case in CASES if case.translate == OK and "\n" not in case.text and "\r" not in case.text]
    assert TEN_THOUSAND_WORDS in texts
    data = "\ufeff" + "\n".join(texts) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode("utf-8"))))
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), *BOUNDED)
    assert_outcome("translate", OK, code, out, err)
    lines = out.split("\n")
    assert len(lines) == len(texts) + 1  # one line out per line in
    short = [i for i, text in enumerate(texts) if len(text) < MAX_SENTENCE_CHARS]
    expected = Translator.load(tiny_model_dir).translate([texts[i] for i in short], BOUNDED_CONFIG)
    assert [lines[i] for i in short] == expected


def test_invalid_utf8_in_a_real_argument(tiny_model_dir: Path) -> None:
    """The operating system hands Python undecodable bytes as lone surrogates: refused, not a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "selfattention", "translate", "--model", str(tiny_model_dir), b"The dog \xff runs."],
        capture_output=True,
        timeout=120,
        env={
            "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
            "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
        },
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    err = result.stderr.decode("utf-8")
    assert err == (
        "selfattention translate: error: input 1 is not valid Unicode: character 9 is U+DCFF, a lone surrogate "
        "(invalid UTF-8 becomes one)\n"
    )


# --- the web API ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> TestClient:
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'selfattention[web]'")
    pytest.importorskip("httpx", reason="the test client needs httpx: pip install 'selfattention[test]'")
    with warnings.catch_warnings():  # Starlette now prefers the httpx2 package; httpx still works
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
        from fastapi.testclient import TestClient

    from selfattention.web import create_app

    return TestClient(create_app(Translator.load(tiny_model_dir)), raise_server_exceptions=False)


def finite_numbers(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    return True


def web_body(path: str, text: str) -> dict[str, object]:
    if path == "/api/context":
        return {"sentences": context_sentences(text), "word": "dog"}
    return {"text": text, "beam": 1}


WEB_FIELDS = {
    "/api/translate": "translation",
    "/api/attention": "weights",
    "/api/explain": "scaled_scores",
    "/api/context": "similarity",
}


@pytest.mark.parametrize("path", list(WEB_FIELDS))
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_web(client: TestClient, case: Case, path: str) -> None:
    body = json.dumps(web_body(path, case.text)).encode()  # ASCII escapes: a lone surrogate travels as \\udcff
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text[:300]
    assert_no_nan(response.text)
    answer = response.json()
    assert finite_numbers(answer)
    expected = case.context if path == "/api/context" else case.sentence
    if expected == OK:
        assert response.status_code == 200, answer
        assert WEB_FIELDS[path] in answer
    else:
        assert response.status_code == 422, answer
        assert isinstance(answer["detail"], str) and expected in answer["detail"], answer["detail"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"text": "The dog \xff runs."}', 400, "error parsing the body"),  # invalid UTF-8: FastAPI's own 400
        (b'{"text": "The dog \\ud800 runs."}', 422, "not valid Unicode: character 9 is U+D800"),  # JSON lone surrogate
        (b'{"text": "The dog runs.", "target": "Le \\udcff chien."}', 422, "target is not valid Unicode"),
        (b'{"text": "\\u007f"}', 422, "no characters the model can read"),
    ],
    ids=["invalid UTF-8", "lone surrogate", "surrogate in target", "escaped DEL"],
)
def test_web_refuses_text_that_is_not_text(client: TestClient, body: bytes, status: int, message: str) -> None:
    headers = {"content-type": "application/json"}
    response = client.post("/api/attention", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_web_context_word_that_is_not_text(client: TestClient) -> None:
    body = json.dumps({"sentences": ["The dog runs.", "The dog sleeps."], "word": "\udcff"}).encode()
    headers = {"content-type": "application/json"}
    response = client.post("/api/context", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "no word '\\udcff'" in response.json()["detail"]


def test_a_reader_that_leaves_stops_the_command_quietly(tiny_model_dir: Path) -> None:
    """`selfattention heads ... | head -1`: the pipe's reader is gone before the table is written."""
    command = [sys.executable, "-m", "selfattention", "heads", "--model", str(tiny_model_dir), "the dog runs"]
    command += ["--from", "dog", "--to", "runs"]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader leaves before a line is written
    err = process.stderr.read().decode("utf-8")
    assert process.wait(timeout=120) == 141, err  # 128 + SIGPIPE, as a process the signal stopped
    assert err == ""
