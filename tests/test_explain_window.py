"""A traced call explained from a selective trace, and a long input shown through a window."""

from __future__ import annotations

import re

import pytest
import torch

from selfattention import ModelConfig, build_model
from selfattention.inspection import explain_head, render_explanation, trace_ids


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=16, n_heads=2, d_ff=32, encoder_layers=2, decoder_layers=2, dropout=0.0)
    return build_model(config).eval()


SOURCE = [5, 6, 7, 8, 9, 10, 2]
TARGET = [1, 11, 12, 13]
LABELS = [f"w{i}" for i in range(len(SOURCE))]


def test_explaining_from_a_selective_trace_gives_the_full_traces_text(model):
    for kind, layer, rows in (("encoder", 1, LABELS), ("cross", 0, ["<s>", "a", "b", "c"])):
        columns = LABELS
        full = trace_ids(model, SOURCE, TARGET).attention(kind, layer)
        chosen = trace_ids(model, SOURCE, TARGET, kinds=[kind], layers=[layer]).attention(kind, layer)
        assert render_explanation(explain_head(chosen, 1, rows, columns)) == render_explanation(
            explain_head(full, 1, rows, columns)
        )


def test_an_encoder_only_trace_runs_the_encoder_alone(model):
    recorder = trace_ids(model, SOURCE, TARGET, kinds=["encoder"])
    assert recorder.recorded_layers("encoder") == [0, 1]
    assert not [name for name in recorder.names() if name.startswith(("decoder", "tgt_embed"))]


def test_a_window_as_large_as_the_input_changes_nothing(model):
    e = explain_head(trace_ids(model, SOURCE, TARGET, kinds=["encoder"]).attention("encoder", 0), 0, LABELS)
    assert render_explanation(e, max_tokens=len(LABELS)) == render_explanation(e)


def test_a_window_shows_the_first_rows_and_columns_and_sums_whole_rows(model):
    e = explain_head(trace_ids(model, SOURCE, TARGET, kinds=["encoder"]).attention("encoder", 0), 0, LABELS)
    text = render_explanation(e, max_tokens=3)
    assert "(first 3 of 7 rows, 3 of 7 columns)" in text
    header = next(line for line in text.splitlines() if line.strip().startswith("w0") and "w2" in line)
    assert "w3" not in header
    weight_rows = re.findall(r"^\s+(w\d)\s+.*\s(\S+) %$", text.split("Step 3")[1].split("Step 4")[0], re.MULTILINE)
    assert [label for label, _ in weight_rows] == ["w0", "w1", "w2"]
    assert all(total == "100" for _, total in weight_rows)  # the sums are those of the whole rows
    assert "Reading the rows (the first 3 of 7)\n" in text
    sentences = text.split("Reading the rows (the first 3 of 7)\n")[1].splitlines()
    assert len(sentences) == 3
    top = torch.topk(e.weights[0], 3)
    strongest = LABELS[int(top.indices[0])]
    expected = "itself" if strongest == "w0" else f"'{strongest}'"
    assert sentences[0].strip().startswith(f"'w0' attends most to {expected}")
    assert "the other 4 tokens share" in sentences[0]


def test_a_window_below_one_is_refused(model):
    e = explain_head(trace_ids(model, SOURCE, TARGET, kinds=["encoder"]).attention("encoder", 0), 0, LABELS)
    with pytest.raises(ValueError, match="max_tokens must be at least 1, got 0"):
        render_explanation(e, max_tokens=0)
