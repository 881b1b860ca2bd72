"""The command line as the ecosystem expects it: help that keeps its examples, --version,
a progress bar only on a terminal, --quiet, and messages that name the sentence's words."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from selfattention.cli import COMMANDS, build_parser, main


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


def test_every_command_is_listed_and_has_help() -> None:
    assert len(subcommands()) >= len(COMMANDS)


@pytest.mark.parametrize("command", subcommands())
def test_examples_are_printed_one_a_line_as_written(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = help_of(capsys, command)
    if "Example" not in text:
        return
    block = text[text.index("Examples:") :].splitlines()
    assert len(block) >= 2, text
    assert all(line.startswith("  selfattention ") for line in block[1:] if line), block


def test_translate_examples_keep_their_lines(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "translate")
    assert '\n  selfattention translate "I am good."\n  selfattention translate < english.txt > french.txt\n' in text


def test_download_documents_its_argument_and_max_len_b_says_what_b_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert "the corpus to fetch" in help_of(capsys, "download")
    text = " ".join(help_of(capsys, "translate").split())
    assert "--max-len-b MAX_LEN_B longest output = a * source length + b" in text


def test_version_is_the_version_line_and_the_engine_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("selfattention ") and "torch" in out[0]
    assert out[1].startswith("engine: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("terminal", "quiet", "drawn"), [(False, False, False), (True, False, True), (True, True, False)]
)
def test_the_progress_bar_is_drawn_only_on_a_terminal_and_not_when_quiet(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool, quiet: bool, drawn: bool
) -> None:
    stderr = Terminal() if terminal else io.StringIO()
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", stdout)
    sentences = [f"the dog runs {i}" for i in range(40)]  # more than one batch
    argv = ["translate", "--model", str(tiny_model_dir), "--workers", "1", "--batch-size", "8", *sentences]
    assert main([*argv, *(["--quiet"] if quiet else [])]) == 0
    assert len(stdout.getvalue().splitlines()) == 40
    assert ("translating" in stderr.getvalue()) is drawn


def test_a_missing_word_lists_the_sentence_words_not_the_end_marker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["heads", "I am good", "--from", "it", "--to", "good"]) == 2
    err = capsys.readouterr().err
    assert "no word 'it'" in err and "'I', 'am', 'good'" in err
    assert "</s>" not in err


@pytest.mark.parametrize("argv", [["--help"], ["attention", "--help"], ["watch", "--help"]])
def test_help_explains_the_one_notation_for_pieces(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    out = " ".join(capsys.readouterr().out.split())
    assert "## marks a piece that continues the word before it" in out
    assert "␣ a word start whose letters follow in ## pieces" in out
    assert "▁" not in out  # SentencePiece's own mark is never shown
