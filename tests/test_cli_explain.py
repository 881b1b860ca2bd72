"""`selfattention explain` prints the seeds' steps with the tokens as labels."""

import re
import subprocess
import sys

import pytest

from selfattention.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_explain_shows_each_step_for_i_am_good(capsys):
    status, out, _ = run(capsys, "explain", "I am good", "--random")
    assert status == 0
    assert "randomly initialised" in out  # says plainly that the model is not trained
    assert "X              3 x 512" in out
    for name in ("Q = X·W_Q", "K = X·W_K", "V = X·W_V"):
        assert re.search(re.escape(name) + r".*3 x 64", out), name
    assert "sqrt(d_k) = sqrt(64) = 8" in out
    assert "Z = weights·V (3 x 64)" in out
    rows = re.findall(r"^\s+(I|am|good)\s+([\d.]+) %\s+([\d.]+) %\s+([\d.]+) %\s+100 %$", out, re.MULTILINE)
    assert [row[0] for row in rows] == ["I", "am", "good"]
    for row in rows:
        assert sum(float(value) for value in row[1:]) == pytest.approx(100.0, abs=0.2)
    assert re.search(r"'I' attends to itself [\d.]+ %, to 'am' [\d.]+ %, to 'good' [\d.]+ %\.", out)


def test_explain_other_layer_head_and_cross_attention(capsys):
    status, out, _ = run(
        capsys,
        "explain",
        "I am good",
        "--random",
        "--layer",
        "5",
        "--head",
        "7",
        "--kind",
        "cross",
        "--target",
        "Je vais bien",
    )
    assert status == 0
    assert "Layer 5, head 7 of 8: cross-attention" in out
    # A decoder row is named by the word its step writes: "vais" is written while reading "Je".
    assert re.search(r"Writing 'vais', the decoder looks at 'I' [\d.]+ %", out)
    assert "X        " in out and "a row is named by the token its step writes" in out


def test_explain_toy_example_matches_the_seed(capsys):
    status, out, _ = run(capsys, "explain", "--example", "toy")
    assert status == 0
    assert "'Apple' attends to 'love' 24.8 %, to itself 50.3 %, to 'phones' 24.8 %." in out
    assert "sqrt(2)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "I am good", "--random", "--layer", "6"], "--layer 6 does not exist: the model has layers 0 to 5"),
        (["explain", "I am good", "--layer", "4"], "--layer 4 does not exist: the model has layers 0 to 3"),
        (["explain", "I am good", "--head", "-1"], "--head -1 does not exist"),
        (["explain", "   "], "give a sentence to translate"),
        (["explain", "I am good", "--random", "--kind", "cross"], "needs the target side"),
        (["explain", "I am good", "--random", "--model", "x"], "exclude each other"),
        (["explain", "I am good", "--example", "toy"], "leave out the text"),
    ],
)
def test_explain_refuses_bad_requests_with_a_clear_message(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_console_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "selfattention", "explain", "--help"], capture_output=True, text=True, check=True
    )
    assert "sqrt(d_k)" in result.stdout and "--layer" in result.stdout


def test_explain_uses_the_bundled_model_by_default(capsys):
    status, out, _ = run(capsys, "explain", "I am good", "--kind", "cross")
    assert status == 0
    assert "models/en-fr" in out and "Translation: " in out
    assert "cross-attention" in out and "</s>" in out
