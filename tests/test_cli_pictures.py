"""`selfattention attention`, `heads` and `context`, run in-process on tiny models."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch

from selfattention.cli import main
from selfattention.decoding import Translator
from selfattention.inspection import trace_translation
from selfattention.inspection.heads import rank_heads
from selfattention.inspection.words import find_word, group_words

TEXT = "A dog ate the food because it was hungry."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIEWS = ("lines", "heatmap", "grid", "mean", "rollout", "alignment")
TABLE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)%\s+(\d+)\s+(\S+)$", re.MULTILINE)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_clean_error(status: int, out: str, err: str, command: str) -> None:
    assert status == 2
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith(f"selfattention {command}: error: ")
    assert err.count("\n") == 1


def model_config(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text(encoding="utf-8"))["model"]


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 20 and image.shape[1] > 20


# --- attention ---


@pytest.mark.parametrize("view", VIEWS)
def test_attention_writes_a_png_for_every_view(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], view: str
) -> None:
    out = tmp_path / f"{view}.png"
    status, stdout, err = run(
        capsys, "attention", TEXT, "--view", view, "--out", str(out), "--model", str(tiny_model_dir)
    )
    assert status == 0, err
    assert stdout.splitlines()[0] == str(out)
    assert stdout.splitlines()[1].startswith("Translation: ")
    assert_png(out)


def test_attention_html_is_standalone_and_carries_the_weights(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "page.html"
    text = 'The dog & "<cat>" runs </script>.'
    status, _, err = run(
        capsys, "attention", text, "--view", "heatmap", "--out", str(out), "--model", str(tiny_model_dir)
    )
    assert status == 0, err
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<cat>" not in page and page.lower().count("</script") == 2  # the user's text never closes one
    for target in re.findall(r"(?:href|src)\s*=\s*[\"']([^\"']*)", page):
        assert target.startswith(("#", "data:")), target
    assert "import " not in page.split('type="module">', 1)[1]  # the drawing code is inlined, not imported
    payload = page.split('id="attention-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(payload)  # JSON reads "<\\/" as "</"
    translator = Translator.load(tiny_model_dir)
    trace = trace_translation(translator.model, translator.tokenizer, text)
    assert data["rows"] == data["columns"] == trace.source_labels
    weights = torch.tensor(data["weights"])
    expected = trace.recorder.attention("encoder", translator.model.config.encoder_layers - 1).weights[0, 0]
    torch.testing.assert_close(weights, expected.float(), atol=1e-6, rtol=0)


def test_attention_svg_line_view_with_token_draws_only_its_lines(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "it.svg"
    status, _, err = run(capsys, "attention", TEXT, "--token", "IT", "--out", str(out), "--model", str(tiny_model_dir))
    assert status == 0, err
    translator = Translator.load(tiny_model_dir)
    labels = trace_translation(translator.model, translator.tokenizer, TEXT, target="Un chien").source_labels
    words = group_words(labels)
    pieces = words[find_word(words, "it")].pieces
    first_piece = next(p for p in pieces if labels[p] != "␣")  # a lone word-start piece is skipped
    ids = [el.get("id") for el in ET.parse(out).getroot().iter() if (el.get("id") or "").startswith("line-")]
    assert ids
    assert {int(name.split("-")[1]) for name in ids} == {first_piece}


def test_attention_without_token_draws_every_row(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all.svg"
    status, _, err = run(capsys, "attention", "The red dog runs.", "--out", str(out), "--model", str(tiny_model_dir))
    assert status == 0, err
    rows = {
        int(el.get("id").split("-")[1])
        for el in ET.parse(out).getroot().iter()
        if (el.get("id") or "").startswith("line-")
    }
    assert len(rows) > 1


def test_attention_absent_token_names_the_words(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.png"
    status, stdout, err = run(
        capsys, "attention", TEXT, "--token", "cat", "--out", str(out), "--model", str(tiny_model_dir)
    )
    assert_clean_error(status, stdout, err, "attention")
    assert "no word 'cat'" in err
    for word in ("'dog'", "'it'", "'hungry'"):
        assert word in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--layer", "99"], "--layer 99 does not exist: the model has layers 0 to {last_layer}"),
        (["--layer", "-1"], "--layer -1 does not exist: the model has layers 0 to {last_layer}"),
        (["--head", "99"], "--head 99 does not exist: each layer has heads 0 to {last_head}"),
        (["--view", "rollout", "--kind", "cross"], "use --kind encoder or decoder"),
        (["--view", "grid", "--layers", "0,7"], "--layers 0,7: valid values are 0 to {last_layer}"),
        (["--view", "grid", "--heads", "x"], "--heads takes comma-separated numbers"),
    ],
)
def test_attention_refuses_bad_options(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    config = model_config(tiny_model_dir)
    expected = message.format(last_layer=config["encoder_layers"] - 1, last_head=config["n_heads"] - 1)
    out = tmp_path / "x.png"
    status, stdout, err = run(capsys, "attention", TEXT, *option, "--out", str(out), "--model", str(tiny_model_dir))
    assert_clean_error(status, stdout, err, "attention")
    assert expected in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["x.gif", "x.jpeg", "noextension"])
def test_attention_unsupported_suffix_names_the_file(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = tmp_path / name
    status, stdout, err = run(capsys, "attention", TEXT, "--out", str(out), "--model", str(tiny_model_dir))
    assert_clean_error(status, stdout, err, "attention")
    assert str(out) in err and "unsupported picture format" in err
    assert not out.exists()


@pytest.mark.parametrize("text", ["", "   "])
def test_attention_empty_text(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    status, stdout, err = run(
        capsys, "attention", text, "--out", str(tmp_path / "x.png"), "--model", str(tiny_model_dir)
    )
    assert_clean_error(status, stdout, err, "attention")
    assert "give a sentence to translate" in err


def test_attention_alignment_uses_the_decoder_layer_count(
    deep_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 encoder layers, 1 decoder layer: cross-attention has only layer 0.
    out = tmp_path / "align.png"
    argv = ["attention", TEXT, "--view", "alignment", "--target", "Un chien", "--model", str(deep_model_dir)]
    status, _, err = run(capsys, *argv, "--out", str(out))
    assert status == 0, err
    assert_png(out)
    status, stdout, err = run(capsys, *argv, "--layer", "1", "--out", str(tmp_path / "bad.png"))
    assert_clean_error(status, stdout, err, "attention")
    assert "--layer 1 does not exist: the model has layers 0 to 0" in err


def test_attention_grid_filters_layers_and_heads(
    deep_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.svg"
    status, _, err = run(
        capsys,
        "attention",
        TEXT,
        "--view",
        "grid",
        "--layers",
        "1",
        "--heads",
        "0,1",
        "--target",
        "Un chien",
        "--out",
        str(out),
        "--model",
        str(deep_model_dir),
    )
    assert status == 0, err
    text = out.read_text(encoding="utf-8")
    assert re.findall(r"<!-- (layer \d, head \d) -->", text) == ["layer 1, head 0", "layer 1, head 1"]


# --- heads ---


def table(out: str) -> tuple[list[str], list[tuple[int, int, float, int, str]]]:
    lines = out.splitlines()
    header = [line for line in lines if line.split()[:2] == ["layer", "head"]]
    rows = [(int(a), int(b), float(c), int(d), e) for a, b, c, d, e in TABLE_ROW.findall(out)]
    return header, rows


def test_heads_prints_the_top_rows_strongest_first(deep_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys,
        "heads",
        TEXT,
        "--from",
        "it",
        "--to",
        "dog",
        "--top",
        "3",
        "--target",
        "Un chien",
        "--model",
        str(deep_model_dir),
    )
    assert status == 0, err
    header, rows = table(out)
    assert header == [f"{'layer':>5}  {'head':>4}  {'weight':>7}  {'rank':>4}  strongest"]
    assert len(rows) == 3  # 2 layers x 2 heads, only the top 3
    weights = [row[2] for row in rows]
    assert weights == sorted(weights, reverse=True)
    translator = Translator.load(deep_model_dir)
    trace = trace_translation(translator.model, translator.tokenizer, TEXT, target="Un chien")
    expected = rank_heads(trace, "it", "dog")[:3]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (s.layer, s.head, s.rank_of_target, s.strongest) for s in expected
    ]
    for row, score in zip(rows, expected, strict=True):
        assert row[2] == pytest.approx(100 * score.weight, abs=0.05)
    assert "encoder attention from 'it' to 'dog'" in out


def test_heads_lists_every_head_when_top_exceeds_them(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = model_config(tiny_model_dir)
    status, out, err = run(
        capsys, "heads", TEXT, "--from", "it", "--to", "dog", "--top", "100", "--model", str(tiny_model_dir)
    )
    assert status == 0, err
    assert out.startswith("Translation: ")
    header, rows = table(out)
    assert len(header) == 1
    assert len(rows) == config["encoder_layers"] * config["n_heads"]


@pytest.mark.parametrize(("from_word", "to_word", "missing"), [("it", "cat", "cat"), ("horse", "dog", "horse")])
def test_heads_unknown_word(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], from_word: str, to_word: str, missing: str
) -> None:
    status, out, err = run(
        capsys,
        "heads",
        TEXT,
        "--from",
        from_word,
        "--to",
        to_word,
        "--target",
        "Un chien",
        "--model",
        str(tiny_model_dir),
    )
    assert_clean_error(status, out, err, "heads")
    assert f"no word '{missing}'" in err and "'hungry'" in err
    assert out == ""


def test_heads_empty_text(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "heads", " ", "--from", "it", "--to", "dog", "--model", str(tiny_model_dir))
    assert_clean_error(status, out, err, "heads")


# --- context ---

CONTEXT_SENTENCES = ("The red dog runs in the park.", "The black dog sleeps.")


def similarity_rows(out: str) -> list[tuple[str, list[float]]]:
    section = out.split("cosine similarity of the word's vectors\n", 1)[1].split("\n\n", 1)[0]
    lines = section.splitlines()[1:]  # below the "after [0]~[1]" header
    rows = []
    for line in lines:
        match = re.fullmatch(r"\s*(embedding|layer \d+)((?:\s+-?\d\.\d{3})+)", line)
        assert match, line
        rows.append((match.group(1), [float(v) for v in match.group(2).split()]))
    return rows


@pytest.mark.parametrize("which", ["tiny", "deep"])
def test_context_prints_one_row_per_layer_and_draws(
    tiny_model_dir: Path,
    deep_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    which: str,
) -> None:
    model_dir = tiny_model_dir if which == "tiny" else deep_model_dir
    layers = model_config(model_dir)["encoder_layers"]
    out = tmp_path / "c.png"
    status, stdout, err = run(
        capsys, "context", *CONTEXT_SENTENCES, "--word", "Dog", "--out", str(out), "--model", str(model_dir)
    )
    assert status == 0, err
    rows = similarity_rows(stdout)
    assert [name for name, _ in rows] == ["embedding"] + [f"layer {i}" for i in range(layers)]
    assert all(len(values) == 1 and -1.0 <= values[0] <= 1.0 for _, values in rows)
    assert "[0]~[1]" in stdout
    assert "[0] 'The red dog runs in the park.': 'dog' = pieces" in stdout
    assert stdout.rstrip().splitlines()[-1] == str(out)
    assert_png(out)


def test_context_three_sentences_give_three_pairs(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "context", *CONTEXT_SENTENCES, "A dog eats.", "--word", "dog", "--model", str(tiny_model_dir)
    )
    assert status == 0, err
    assert "[0]~[1]  [0]~[2]  [1]~[2]" in out
    assert all(len(values) == 3 for _, values in similarity_rows(out))


def test_context_more_neighbours_than_pieces(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vocab = model_config(tiny_model_dir)["vocab_size"]
    status, out, err = run(
        capsys,
        "context",
        *CONTEXT_SENTENCES,
        "--word",
        "dog",
        "--neighbours",
        str(vocab + 100),
        "--model",
        str(tiny_model_dir),
    )
    assert status == 0, err
    section = out.split("nearest vocabulary pieces to the last layer's vector\n", 1)[1]
    first = section.splitlines()[0]
    assert first.startswith("[0] ")
    assert len(first[4:].split(", ")) == vocab


@pytest.mark.parametrize(
    ("sentences", "message"),
    [(["The dog runs."], "at least two"), (["The dog runs.", "   "], "sentence 2 is empty")],  # never dropped silently
)
def test_context_needs_two_sentences(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], sentences: list[str], message: str
) -> None:
    status, out, err = run(capsys, "context", *sentences, "--word", "dog", "--model", str(tiny_model_dir))
    assert_clean_error(status, out, err, "context")
    assert message in err


def test_context_missing_word_and_bad_suffix(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "context", *CONTEXT_SENTENCES, "--word", "red", "--model", str(tiny_model_dir))
    assert_clean_error(status, out, err, "context")
    assert "no word 'red'" in err and "'sleeps'" in err
    bad = tmp_path / "c.bmp"
    status, out, err = run(
        capsys, "context", *CONTEXT_SENTENCES, "--word", "dog", "--out", str(bad), "--model", str(tiny_model_dir)
    )
    assert_clean_error(status, out, err, "context")
    assert str(bad) in err
    assert not bad.exists()


@pytest.mark.parametrize("view", ["heatmap", "alignment", "lines"])
def test_attention_names_a_cross_attention_row_by_the_token_written(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], view: str
) -> None:
    """Issue 25: the heatmap labelled a row by the decoder's input ("<s>" → ...); the alignment by the output."""
    out = tmp_path / "cross.html"
    status, _, err = run(
        capsys,
        "attention",
        TEXT,
        "--kind",
        "cross",
        "--view",
        view,
        "--target",
        "Un chien a mangé.",
        "--out",
        str(out),
        "--model",
        str(tiny_model_dir),
    )
    assert status == 0, err
    payload = out.read_text(encoding="utf-8").split('id="attention-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(payload)
    translator = Translator.load(tiny_model_dir)
    trace = trace_translation(translator.model, translator.tokenizer, TEXT, target="Un chien a mangé.")
    assert data["rows"] == trace.produced_labels and data["rows"][0] != "<s>" and data["rows"][-1] == "</s>"
    assert data["columns"] == trace.source_labels and data["writes"] is True
