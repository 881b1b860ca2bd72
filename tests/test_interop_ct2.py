"""CTranslate2 export: the converted model translates as ours does, token for token.

Three models go through ``export_ct2``: the tiny trained model (``tiny_model_dir``, which repeats
one piece until the length limit), a random model of the same shape whose output bias favours
``</s>`` now and then (so that hypotheses end at different lengths), and that random model laid
out as opus-mt is (``<pad>`` last, a zero vector, and the decoder's start), which takes
CTranslate2's own Marian conversion unchanged.

CTranslate2 settings that make it search as ours does (``max_len_a=0``, ``max_len_b=LIMIT``):
the source pieces end with ``</s>``; ``max_decoding_length=LIMIT - 1`` (our limit counts the
forced ``</s>``, CTranslate2's does not count an end token); ``min_decoding_length=0`` (its
default 1 forbids an empty translation, which ours allows); the same ``length_penalty``; the
start and padding pieces suppressed, as ours bans them. Two documented differences remain:

- at the length limit, we force ``</s>`` and keep its log-probability in the score; CTranslate2
  stops without scoring an end token. Beam results are therefore compared only on sentences
  whose best hypothesis ends before the limit (greedy results are compared on all).
- CTranslate2 suppresses tokens before its softmax (the others' probabilities renormalised);
  we ban them after it, as ``generate()`` does. The models here give those tokens almost no
  probability (a trained model never predicts them), so the scores agree.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from selfattention.cli import main
from selfattention.data.marian_tokenizer import MarianTokenizerAdapter, load_tokenizer
from selfattention.data.tokenizer import SubwordTokenizer, Tokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.interop import export_ct2
from selfattention.model import Transformer, build_model
from selfattention.model_io import load_model

needs_ct2 = pytest.mark.skipif(
    importlib.util.find_spec("ctranslate2") is None or importlib.util.find_spec("transformers") is None,
    reason="ctranslate2 and transformers are not installed (pip install 'selfattention[ct2]')",
)

SENTENCES = [
    "The red dog runs in the park.",
    "A small cat sleeps.",
    "The big black horse eats near the house.",
    "Two boys play on the beach.",
    "The man swims.",
    "The white bird jumps on the green house near the park.",
    "A blue cat.",
    "The young girl walks in the street with her old dog.",
    "Dogs!",
    "The boy and the man eat.",
]
LIMIT = 24  # our max_len_b (with max_len_a 0), the forced </s> included
CT2_FILES = ("model.bin", "config.json", "shared_vocabulary.json")
TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json", "tokenizer_config.json")


# --- the models ----------------------------------------------------------------------------------


def peaky_model(tiny: Transformer) -> Transformer:
    """A random model of the tiny model's shape; its output bias makes </s> likely now and then.

    The start and padding ids get a bias of -30, as training leaves them (they are never targets).
    """
    assert tiny.config is not None
    torch.manual_seed(0)
    model = build_model(replace(tiny.config, output_bias=True))
    with torch.no_grad():
        model.output_proj.bias.normal_(0.0, 0.5)
        model.output_proj.bias[tiny.config.eos_id] += 3.0
        model.output_proj.bias[[tiny.config.pad_id, tiny.config.bos_id]] = -30.0
    return model.eval()


def opus_mt_layout(model: Transformer, tokenizer: Tokenizer) -> tuple[Transformer, MarianTokenizerAdapter]:
    """``model`` with opus-mt's vocabulary layout: ``<pad>`` moved last, a zero vector, and the decoder's start."""
    config = model.config
    assert config is not None and config.pad_id == 0
    vocab_size = config.vocab_size
    order = [*range(1, vocab_size), 0]  # new id -> old id
    assert config.tie_embeddings and config.output_bias
    state = model.state_dict()
    embeddings = state["src_embed.token.weight"][order].clone()
    embeddings[-1] = 0.0  # opus-mt's <pad>: a zero vector
    for name in ("src_embed.token.weight", "tgt_embed.token.weight", "output_proj.weight"):
        state[name] = embeddings
    state["output_proj.bias"] = state["output_proj.bias"][order].clone()
    new_config = replace(config, pad_id=vocab_size - 1, bos_id=vocab_size - 1, eos_id=config.eos_id - 1)
    again = build_model(new_config)
    again.load_state_dict(state)
    pieces = tokenizer.pieces(order)
    proto = tokenizer.model_proto
    adapter = MarianTokenizerAdapter(proto, proto, {piece: index for index, piece in enumerate(pieces)})
    return again.eval(), adapter


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path) -> dict[str, tuple[Transformer, SubwordTokenizer]]:
    tiny = load_model(tiny_model_dir).eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    assert isinstance(tokenizer, Tokenizer)
    peaky = peaky_model(tiny)
    return {"tiny": (tiny, tokenizer), "peaky": (peaky, tokenizer), "opus-mt-layout": opus_mt_layout(peaky, tokenizer)}


@pytest.fixture(scope="module")
def exports(
    models: dict[str, tuple[Transformer, SubwordTokenizer]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed (pip install 'selfattention[ct2]')")
    return {
        name: export_ct2(model, tokenizer, tmp_path_factory.mktemp(f"ct2-{name}"))
        for name, (model, tokenizer) in models.items()
    }


# --- searching with each -------------------------------------------------------------------------


def our_search(
    model: Transformer, tokenizer: SubwordTokenizer, beams: int, length_penalty: float = 1.0
) -> list[list[int]]:
    config = DecodingConfig(beam_size=beams, length_penalty=length_penalty, max_len_a=0.0, max_len_b=LIMIT)
    return Translator(model, tokenizer).translate_ids([tokenizer.encode(text) for text in SENTENCES], config)


def ct2_search(
    directory: Path,
    tokenizer: SubwordTokenizer,
    beams: int,
    length_penalty: float = 1.0,
    compute_type: str = "float32",
) -> list[list[str]]:
    """CTranslate2's best hypotheses, as pieces."""
    import ctranslate2

    translator = ctranslate2.Translator(str(directory), device="cpu", compute_type=compute_type, intra_threads=1)
    vocabulary = json.loads((directory / "shared_vocabulary.json").read_text(encoding="utf-8"))
    eos = "</s>"
    suppressed = [[piece] for piece in ("<s>", "<pad>") if piece in vocabulary]  # opus-mt's has no <pad>
    sources = [[*tokenizer.pieces(tokenizer.encode(text)), eos] for text in SENTENCES]
    results = translator.translate_batch(
        sources,
        beam_size=beams,
        length_penalty=length_penalty,
        max_decoding_length=LIMIT - 1,
        min_decoding_length=0,
        suppress_sequences=suppressed,
    )
    return [result.hypotheses[0] for result in results]


def as_ids(tokenizer: SubwordTokenizer, rows: list[list[str]]) -> list[list[int]]:
    return [[tokenizer.piece_id(piece) for piece in row] for row in rows]


# --- tests ---------------------------------------------------------------------------------------


@needs_ct2
@pytest.mark.parametrize("kind", ["tiny", "peaky", "opus-mt-layout"])
def test_greedy_search_matches_ours(
    models: dict[str, tuple[Transformer, SubwordTokenizer]], exports: dict[str, Path], kind: str
) -> None:
    model, tokenizer = models[kind]
    ours = our_search(model, tokenizer, beams=1)
    assert as_ids(tokenizer, ct2_search(exports[kind], tokenizer, beams=1)) == ours
    if kind != "tiny":  # the tiny model never ends early; the others must, or the test proves little
        assert sum(len(ids) < LIMIT - 1 for ids in ours) >= 5, [len(ids) for ids in ours]


@needs_ct2
@pytest.mark.parametrize("kind", ["tiny", "peaky", "opus-mt-layout"])
@pytest.mark.parametrize("length_penalty", [1.0, 0.6])
def test_beam_search_matches_ours_where_it_ends_before_the_limit(
    models: dict[str, tuple[Transformer, SubwordTokenizer]],
    exports: dict[str, Path],
    kind: str,
    length_penalty: float,
) -> None:
    model, tokenizer = models[kind]
    ours = our_search(model, tokenizer, beams=4, length_penalty=length_penalty)
    theirs = as_ids(tokenizer, ct2_search(exports[kind], tokenizer, beams=4, length_penalty=length_penalty))
    ended = [index for index, ids in enumerate(ours) if len(ids) < LIMIT - 1]
    assert [theirs[i] for i in ended] == [ours[i] for i in ended]
    if kind != "tiny":
        assert len(ended) >= 5, [len(ids) for ids in ours]


@needs_ct2
def test_the_start_token_and_every_vocabulary_entry_are_kept(
    models: dict[str, tuple[Transformer, SubwordTokenizer]], exports: dict[str, Path]
) -> None:
    """Ours start from <s>; the opus-mt layout is converted as CTranslate2 converts opus-mt."""
    ours = json.loads((exports["peaky"] / "config.json").read_text(encoding="utf-8"))
    assert ours["decoder_start_token"] == "<s>"
    vocabulary = json.loads((exports["peaky"] / "shared_vocabulary.json").read_text(encoding="utf-8"))
    tokenizer = models["peaky"][1]
    assert vocabulary == tokenizer.pieces(range(tokenizer.vocab_size))
    opus = json.loads((exports["opus-mt-layout"] / "config.json").read_text(encoding="utf-8"))
    assert opus["decoder_start_token"] == "</s>"  # any token: CTranslate2 starts Marian from a zero vector
    opus_vocabulary = json.loads((exports["opus-mt-layout"] / "shared_vocabulary.json").read_text(encoding="utf-8"))
    assert "<pad>" not in opus_vocabulary
    assert len(opus_vocabulary) == tokenizer.vocab_size - 1


@needs_ct2
def test_export_ct2_command_writes_a_runnable_directory(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ct2"
    assert main(["export-ct2", str(tiny_model_dir), "--out", str(out), "--quantization", "float32"]) == 0
    assert str(out) in capsys.readouterr().out
    for name in (*CT2_FILES, *TOKENIZER_FILES):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob("**/*.safetensors"))  # the Marian intermediate stayed temporary
    tokenizer = load_tokenizer(out)  # the copied files are a Marian tokenizer with our ids
    ours = load_tokenizer(tiny_model_dir)
    assert tokenizer.encode(SENTENCES[0]) == ours.encode(SENTENCES[0])
    model = load_model(tiny_model_dir)
    assert as_ids(ours, ct2_search(out, ours, beams=1)) == our_search(model, ours, beams=1)
    # an existing export is kept unless --force
    assert main(["export-ct2", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["export-ct2", str(tiny_model_dir), "--out", str(out), "--force"]) == 0


@needs_ct2
def test_int8_export_loads_and_translates(tiny_model_dir: Path, exports: dict[str, Path], tmp_path: Path) -> None:
    """No equality is claimed for int8 weights: it loads, runs and gives pieces of the vocabulary."""
    out = tmp_path / "int8"
    assert main(["export-ct2", str(tiny_model_dir), "--out", str(out), "--quantization", "int8"]) == 0
    tokenizer = load_tokenizer(out)
    for beams in (1, 4):
        rows = ct2_search(out, tokenizer, beams=beams, compute_type="int8")
        assert len(rows) == len(SENTENCES)
        assert any(rows)
        assert all(piece in tokenizer.vocab for row in rows for piece in row)  # type: ignore[attr-defined]
    assert (out / "model.bin").stat().st_size < (exports["tiny"] / "model.bin").stat().st_size  # float32


def test_a_missing_ctranslate2_is_a_clear_error(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # "import ctranslate2" now raises ImportError
    assert main(["export-ct2", str(tiny_model_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "ctranslate2" in err
    assert "pip install 'selfattention[ct2]'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
