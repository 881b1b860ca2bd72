"""The bundled en-fr model: present, within its size budget, and translating as recorded.

The expected translations were recorded from the bundled model with beam search (beam 4); a
change to the model, the tokenizer, the search or the core that alters any of them fails here.
"""

import json
import runpy
from pathlib import Path

import pytest

from selfattention.cli import main
from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.decoding import DecodingConfig, Translator

MODEL_DIR = BUNDLED_MODELS / DEFAULT_MODEL
MAX_BYTES = 40 * 1024 * 1024
EXPECTED = json.loads((Path(__file__).parent / "data" / "bundled_translations.json").read_text(encoding="utf-8"))


def test_the_bundled_model_is_installed_and_small_enough():
    for name in ("config.json", "model.safetensors", "tokenizer.model"):
        assert (MODEL_DIR / name).is_file(), name
    assert (MODEL_DIR / "model.safetensors").stat().st_size <= MAX_BYTES


@pytest.mark.slow
def test_fixed_translations_with_beam_search():
    translator = Translator.load(MODEL_DIR)
    sources = [item["en"] for item in EXPECTED]
    outputs = translator.translate(sources, DecodingConfig(beam_size=4))
    assert outputs == [item["fr"] for item in EXPECTED]


@pytest.mark.slow
def test_translate_uses_the_bundled_model_by_default(capsys):
    assert main(["translate", EXPECTED[0]["en"]]) == 0
    assert capsys.readouterr().out == EXPECTED[0]["fr"] + "\n"


@pytest.mark.slow
def test_the_walkthrough_runs_on_the_bundled_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WALKTHROUGH_OUT", str(tmp_path / "pictures"))
    monkeypatch.delenv("SELFATTENTION_MODEL", raising=False)
    runpy.run_path(str(Path(__file__).parents[1] / "docs" / "walkthrough.py"), run_name="__main__")
    picture = tmp_path / "pictures" / "it-dog.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_walkthrough_converts_to_a_notebook():
    jupytext = pytest.importorskip("jupytext", reason="jupytext is in the dev extra")
    nbformat = pytest.importorskip("nbformat")
    notebook = jupytext.read(Path(__file__).parents[1] / "docs" / "walkthrough.py")
    nbformat.validate(notebook)
    kinds = {cell.cell_type for cell in notebook.cells}
    assert kinds == {"markdown", "code"}
    assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 8
