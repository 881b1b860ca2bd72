"""The command line, in process: translate, evaluate, train and curves on a tiny model and corpus."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from selfattention.cli import main
from selfattention.data import load_corpus
from selfattention.decoding import DecodingConfig, Translator
from selfattention.decoding.text_translator import TextTranslator
from selfattention.evaluation import score
from selfattention.training.checkpoint import list_checkpoints

TINY_TOML = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SENTENCES = ["The red dog runs in the park.", "The small cat sleeps.", "The big horse jumps on the beach."]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(text: str) -> list[str]:
    assert text.endswith("\n")
    return text[:-1].split("\n")


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def assert_clean_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("selfattention ")
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


# -- translate ----------------------------------------------------------------------------------


def test_translate_prints_one_line_per_argument(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--beam", "2", *SENTENCES)
    assert code == 0, err
    expected = Translator.load(tiny_model_dir).translate(SENTENCES, DecodingConfig(beam_size=2))
    assert lines(out) == expected
    code, out, _ = run(capsys, "translate", "--model", str(tiny_model_dir), "--beam", "1", SENTENCES[0])
    assert code == 0
    assert lines(out) == Translator.load(tiny_model_dir).translate(SENTENCES[:1], DecodingConfig(beam_size=1))


def test_translate_reads_lines_from_stdin(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_stdin(monkeypatch, b"The red dog runs.\n\nThe small cat sleeps.\r\nLe chien \xc3\xa9 dort.\nThe bird")
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--beam", "2", "--batch-size", "2")
    assert code == 0, err
    texts = ["The red dog runs.", "", "The small cat sleeps.", "Le chien é dort.", "The bird"]
    output = lines(out)
    assert len(output) == len(texts)
    assert output[1] == ""
    assert output == Translator.load(tiny_model_dir).translate(texts, DecodingConfig(beam_size=2))


SEVEN_LINES = b"The red dog runs.\nThe cat sleeps.\n\nA man walks.\nThe bird sings.\nTwo dogs play.\nThe boy eats.\n"


def test_windows_translate_as_one_window_does(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_stdin(monkeypatch, SEVEN_LINES)
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--beam", "2", "--window", "3")
    assert code == 0, err
    texts = SEVEN_LINES.decode("utf-8").splitlines()
    assert lines(out) == Translator.load(tiny_model_dir).translate(texts, DecodingConfig(beam_size=2))


def test_a_stopped_translation_keeps_the_windows_it_wrote(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (Ctrl-C) in its third window, `translate` has written the first two windows' lines."""
    translate = TextTranslator.translate
    windows: list[int] = []

    def stopped_in_the_third(self: TextTranslator, texts: list[str], *args: object, **kwargs: object) -> list[str]:
        windows.append(len(texts))
        if len(windows) == 3:
            raise KeyboardInterrupt
        return translate(self, texts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TextTranslator, "translate", stopped_in_the_third)
    set_stdin(monkeypatch, SEVEN_LINES)
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--beam", "1", "--window", "3")
    assert (code, err) == (130, "interrupted\n")
    assert windows == [3, 3, 1]
    texts = SEVEN_LINES.decode("utf-8").splitlines()[:6]
    assert lines(out) == Translator.load(tiny_model_dir).translate(texts, DecodingConfig(beam_size=1))


def test_translate_refuses_a_window_of_no_lines(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--window", "0", "The dog runs.")
    assert_clean_error(code, out, err, "--window", "at least 1")


def test_translate_of_empty_stdin_prints_nothing(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_stdin(monkeypatch, b"")
    assert run(capsys, "translate", "--model", str(tiny_model_dir)) == (0, "", "")


def test_translate_refuses_invalid_utf8_naming_the_line(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_stdin(monkeypatch, b"The dog runs.\nThe cat \xff sleeps.\n")
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir))
    assert_clean_error(code, out, err, "line 2", "invalid UTF-8", "byte 9")


def test_translate_with_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-model"
    code, out, err = run(capsys, "translate", "--model", str(missing), "The dog runs.")
    assert_clean_error(code, out, err, "no model at", str(missing), "--model DIR")


def test_translate_with_a_broken_model_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    code, out, err = run(capsys, "translate", "--model", str(broken), "The dog runs.")
    assert_clean_error(code, out, err, "config.json", "invalid JSON")


def test_translate_int8_gives_the_int8_translators_output(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), "--precision", "int8", *SENTENCES)
    assert code == 0, err
    int8 = Translator.load(tiny_model_dir, precision="int8")
    assert lines(out) == int8.translate(SENTENCES, DecodingConfig(beam_size=4))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--beam", "0"], "--beam must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--precision", "int8", "--device", "cuda"], "--precision int8 runs on the CPU only"),
    ],
)
def test_translate_refuses_bad_decoding_options(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    code, out, err = run(capsys, "translate", "--model", str(tiny_model_dir), *option, "The dog runs.")
    assert_clean_error(code, out, err, message)


# -- evaluate -----------------------------------------------------------------------------------


def write_lines(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return path


SCORE_LINE = re.compile(r"^BLEU (\d+\.\d\d)  chrF (\d+\.\d\d)  \((\d+) sentences, beam (\d+)\)$")


def test_evaluate_files_prints_bleu_and_chrf(
    tiny_model_dir: Path, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = load_corpus("multi30k", "valid", tiny_corpus)
    src = write_lines(tmp_path / "src.en", [s for s, _ in pairs])
    ref = write_lines(tmp_path / "ref.fr", [t for _, t in pairs])
    output = tmp_path / "hyp.fr"
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--src", str(src), "--ref", str(ref),
        "--beam", "2", "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    report = lines(out)
    match = SCORE_LINE.match(report[0])
    assert match, report
    hypotheses = Translator.load(tiny_model_dir).translate([s for s, _ in pairs], DecodingConfig(beam_size=2))
    expected = score(hypotheses, [t for _, t in pairs])
    assert float(match.group(1)) == round(expected.bleu, 2)
    assert float(match.group(2)) == round(expected.chrf, 2)
    assert (int(match.group(3)), int(match.group(4))) == (len(pairs), 2)
    assert not any("comparable" in line for line in report)
    assert report[-1] == expected.signature
    assert output.read_text(encoding="utf-8") == "".join(h + "\n" for h in hypotheses)


def test_evaluate_refuses_unequal_files_and_missing_input(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_lines(tmp_path / "src.en", ["The dog runs.", "The cat sleeps."])
    ref = write_lines(tmp_path / "ref.fr", ["Le chien court."])
    code, out, err = run(capsys, "evaluate", "--model", str(tiny_model_dir), "--src", str(src), "--ref", str(ref))
    assert_clean_error(code, out, err, "has 2 lines", "has 1")
    code, out, err = run(capsys, "evaluate", "--model", str(tiny_model_dir), "--src", str(src))
    assert_clean_error(code, out, err, "--src and --ref")
    code, out, err = run(capsys, "evaluate", "--model", str(tiny_model_dir), "--src", str(src), "--ref", "absent.fr")
    assert_clean_error(code, out, err, "absent.fr", "no such file")


def test_evaluate_a_corpus_prints_the_comparable_bleu(
    tiny_model_dir: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--corpus", "multi30k", "--data-dir", str(tiny_corpus),
        "--beam", "1",
    )  # fmt: skip
    assert code == 0, err
    report = lines(out)
    assert SCORE_LINE.match(report[0]), report
    assert "(20 sentences, beam 1)" in report[0]
    assert re.fullmatch(r"Multi30k-comparable BLEU \(lower-cased, Moses-tokenised\) \d+\.\d\d", report[1]), report


def test_evaluate_json(tiny_model_dir: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--corpus", "multi30k", "--data-dir", str(tiny_corpus),
        "--beam", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert len(lines(out)) == 1
    report = json.loads(out)
    assert {"bleu", "chrf", "bleu_comparable"} <= set(report)
    assert all(isinstance(report[key], float) for key in ("bleu", "chrf", "bleu_comparable"))
    assert report["sentences"] == 20
    assert report["beam"] == 1
    # the validation split has no official tokenised references: no comparable score
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--corpus", "multi30k", "--split", "valid",
        "--data-dir", str(tiny_corpus), "--beam", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "bleu_comparable" not in json.loads(out)


def test_evaluate_perfect_translations_score_100_both_ways(
    tiny_model_dir: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an oracle translator, the comparable BLEU's references line up with the hypotheses."""
    oracle = dict(load_corpus("multi30k", "test", tiny_corpus))
    monkeypatch.setattr(
        TextTranslator, "translate", lambda self, texts, config=None, progress=None: [oracle[t] for t in texts]
    )
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--corpus", "multi30k", "--data-dir", str(tiny_corpus),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["bleu"] == pytest.approx(100.0)
    assert report["chrf"] == pytest.approx(100.0)
    assert report["bleu_comparable"] == pytest.approx(100.0)


def test_evaluate_a_missing_corpus(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "evaluate", "--model", str(tiny_model_dir), "--corpus", "multi30k", "--data-dir", str(tmp_path)
    )
    assert_clean_error(code, out, err, "multi30k", "not found", "download")


# -- train and curves ---------------------------------------------------------------------------

TINY_OVERRIDES = [
    "model.d_model=32",
    "model.n_heads=2",
    "model.d_ff=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "data.vocab_size=120",
    "train.max_tokens=256",
    "train.warmup_steps=10",
    "train.valid_bleu_sentences=10",
]


@pytest.mark.slow
def test_train_writes_checkpoints_and_refuses_to_overwrite_them(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "run"
    common = ["train", "--config", str(TINY_TOML), "--out", str(out_dir), "--data-dir", str(tiny_corpus)]
    overrides = [*TINY_OVERRIDES, "train.max_steps=3"]
    code, out, err = run(capsys, *common, "--no-progress", *overrides)
    assert code == 0, err
    checkpoint = out_dir / "checkpoints" / "step-00000003"
    # No validation within 3 steps: best/ is the last model (issue 26: a run of any length leaves a best/).
    assert out.strip() == f"best model: {out_dir / 'best'}"
    assert (out_dir / "best" / "model.safetensors").read_bytes() == (checkpoint / "model.safetensors").read_bytes()
    assert [p.name for p in list_checkpoints(out_dir)] == ["step-00000003"]
    written = json.loads((out_dir / "run_config.json").read_text(encoding="utf-8"))
    assert written["model"]["d_model"] == 32
    assert written["train"]["max_steps"] == 3
    assert written["data"]["data_dir"] == str(tiny_corpus)
    assert (out_dir / "metrics.jsonl").is_file()

    code, out, err = run(capsys, *common, "--no-progress", *overrides, "train.max_steps=5")
    assert_clean_error(code, out, err, "already holds checkpoints", "--resume")
    assert [p.name for p in list_checkpoints(out_dir)] == ["step-00000003"]

    # a later override wins
    code, out, err = run(capsys, *common, "--no-progress", "--resume", *overrides, "train.max_steps=5")
    assert code == 0, err
    assert list_checkpoints(out_dir)[-1].name == "step-00000005"


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.max_stepz=3", ["max_stepz", "tiny.toml"]),
        ("max_steps=3", ["table.key=value"]),
        ('train.max_steps="many"', ["max_steps", "int"]),
    ],
)
def test_train_refuses_bad_overrides(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, words: list[str]
) -> None:
    out_dir = tmp_path / "run"
    code, out, err = run(
        capsys, "train", "--config", str(TINY_TOML), "--out", str(out_dir), "--data-dir", str(tiny_corpus), override
    )
    assert_clean_error(code, out, err, *words)
    assert not out_dir.exists()


def test_train_with_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", "--config", str(tmp_path / "absent.toml"), "--out", str(tmp_path / "run"))
    assert_clean_error(code, out, err, "absent.toml", "no such configuration file")


def test_curves_writes_a_png(tiny_run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "curves.png"
    code, out, err = run(capsys, "curves", str(tiny_run_dir), "--out", str(target))
    assert code == 0, err
    assert out.strip() == str(target)
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    # by default the picture goes into the run directory
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy2(tiny_run_dir / "metrics.jsonl", copy / "metrics.jsonl")
    code, out, err = run(capsys, "curves", str(copy))
    assert code == 0, err
    assert out.strip() == str(copy / "curves.png")
    assert (copy / "curves.png").read_bytes()[:8] == PNG_SIGNATURE


def test_curves_of_a_directory_without_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "curves", str(tmp_path))
    assert_clean_error(code, out, err, "metrics.jsonl", "no metrics")
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n{oops\n', encoding="utf-8")
    code, out, err = run(capsys, "curves", str(tmp_path))
    assert_clean_error(code, out, err, "line 2", "invalid JSON")
    assert not (tmp_path / "curves.png").exists()
