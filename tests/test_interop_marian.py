"""Hugging Face Marian in and out: the same logits, the same translations, lossless round trips.

Nothing is downloaded: each Marian model is a random ``MarianMTModel`` built here in the shape of
opus-mt-en-fr (d_model 512, 8 heads, d_ff 2048, swish, scaled and shared embeddings), with tiny
SentencePiece models trained here for each side and a ``vocab.json`` joining them.

``generate()`` settings for the comparisons (they make it search as ours does):
``do_sample=False``; ``num_beams`` 1 or 4; ``early_stopping=True`` (a sentence is done when it
has ``num_beams`` finished hypotheses); the same ``length_penalty`` (score / length ** penalty,
length counting the end token); ``bad_words_ids=[[pad]]`` (opus-mt's own setting: we never emit
the start or padding id); ``max_new_tokens`` = our ``max_len_b`` with ``max_len_a=0``. At that
limit both force ``</s>`` (Marian's ``forced_eos_token_id``), but there ``generate()`` scores the
forced ``</s>`` as log-probability 0 where we keep its real log-probability, so beam tests check
that some hypotheses end before the limit.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm
import torch
from safetensors.torch import load_file

from selfattention.cli import main
from selfattention.config import ModelConfig
from selfattention.data.marian_tokenizer import MarianTokenizerAdapter, load_tokenizer
from selfattention.data.tokenizer import Tokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection import trace_translation
from selfattention.interop import export_marian, import_marian
from selfattention.interop.marian import InteropError, marian_width_order, permute_width
from selfattention.layers import sinusoidal_table
from selfattention.model import Transformer, build_model
from selfattention.model_io import ModelFileError, load_model

transformers = pytest.importorskip("transformers")
from transformers import MarianConfig, MarianMTModel, MarianTokenizer  # noqa: E402


def _words(*lines: str) -> list[str]:
    return [word for line in lines for word in line.split()]


ENGLISH = _words(
    "the a one two red blue green black white small big old young dog cat horse bird man woman boy girl",
    "runs sleeps jumps eats swims plays sings reads walks in on near under park beach house street river",
)
FRENCH = _words(
    "le la un une deux rouge bleu vert noir blanc petit grand vieux jeune chien chat cheval oiseau homme",
    "femme garçon fille court dort saute mange nage joue chante lit marche dans sur près sous parc",
    "plage maison rue rivière",
)
SENTENCES = [
    "The red dog runs in the park.",
    "A small bird sleeps.",
    "The big old horse eats near the river.",
    "Two young girls play on the beach.",
    "A man reads.",
    "The white cat jumps under the blue house near the green street.",
]
TOLERANCE = 1e-5  # largest relative logits difference allowed


# --- building Marian models here ------------------------------------------------------------------


def _sentences(words: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))).capitalize() + "." for _ in range(count)]


def _train_spm(lines: list[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """source.spm, target.spm, and a vocab.json as opus-mt lays it out: </s> 0, <unk> 1, ..., <pad> last."""
    directory = tmp_path_factory.mktemp("marian-tokenizer")
    protos = [_train_spm(_sentences(ENGLISH, 400, 1), 150), _train_spm(_sentences(FRENCH, 400, 2), 150)]
    pieces: list[str] = []
    for proto in protos:
        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(proto)
        for index in range(processor.get_piece_size()):
            piece = processor.id_to_piece(index)
            if not (processor.is_control(index) or processor.is_unknown(index)) and piece not in pieces:
                pieces.append(piece)
    vocab = {"</s>": 0, "<unk>": 1, **{piece: index + 2 for index, piece in enumerate(pieces)}}
    vocab["<pad>"] = len(vocab)
    (directory / "source.spm").write_bytes(protos[0])
    (directory / "target.spm").write_bytes(protos[1])
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"source_lang": "en", "target_lang": "fr"}))
    return directory


def make_marian(
    tokenizer_dir: Path, out: Path, *, layers: int = 2, seed: int = 0, eos_bias: float = 0.0, **changes: Any
) -> MarianMTModel:
    """A random opus-mt-en-fr-shaped MarianMTModel saved with save_pretrained into ``out``."""
    vocab_size = len(json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8")))
    settings = {
        "vocab_size": vocab_size,
        "d_model": 512,
        "encoder_layers": layers,
        "decoder_layers": layers,
        "encoder_attention_heads": 8,
        "decoder_attention_heads": 8,
        "encoder_ffn_dim": 2048,
        "decoder_ffn_dim": 2048,
        "activation_function": "swish",
        "scale_embedding": True,
        "max_position_embeddings": 512,
        "pad_token_id": vocab_size - 1,
        "decoder_start_token_id": vocab_size - 1,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "init_std": 0.05,  # peakier than the default 0.02, so that searches have clear winners
        **changes,
    }
    torch.manual_seed(seed)
    model = MarianMTModel(MarianConfig(**settings)).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 0.5)
        model.final_logits_bias[0, 0] += eos_bias  # </s> now and then, so that hypotheses end
    model.save_pretrained(out)
    for name in ("source.spm", "target.spm", "vocab.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, out / name)
    return model


@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("opus-mt-like")
    make_marian(tokenizer_dir, out, eos_bias=3.0)
    return out


@pytest.fixture(scope="module")
def theirs(marian_dir: Path) -> MarianMTModel:
    return MarianMTModel.from_pretrained(marian_dir).eval()


@pytest.fixture(scope="module")
def their_tokenizer(marian_dir: Path) -> MarianTokenizer:
    return MarianTokenizer.from_pretrained(marian_dir)


@pytest.fixture(scope="module")
def imported(marian_dir: Path) -> tuple[Transformer, MarianTokenizerAdapter]:
    return import_marian(marian_dir)


# --- comparing ------------------------------------------------------------------------------------


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).abs().max() / reference.abs().max())


def assert_same_logits(ours: Transformer, theirs: MarianMTModel, their_tokenizer: MarianTokenizer) -> None:
    """Teacher-forced logits on a padded batch, with a random target prefix after the start id."""
    batch = their_tokenizer(SENTENCES, return_tensors="pt", padding=True)
    start = theirs.config.decoder_start_token_id
    generator = torch.Generator().manual_seed(7)
    body = torch.randint(2, theirs.config.vocab_size - 1, (len(SENTENCES), 9), generator=generator)
    decoder_input = torch.cat([torch.full((len(SENTENCES), 1), start), body], dim=1)
    with torch.inference_mode():
        reference = theirs(**batch, decoder_input_ids=decoder_input).logits
        logits = ours(batch.input_ids, decoder_input)
    assert relative_error(logits, reference) <= TOLERANCE


def generate(
    theirs: MarianMTModel, batch: Any, *, beams: int, max_new_tokens: int, length_penalty: float = 1.0
) -> list[list[int]]:
    """``generate()`` as our search runs, its output without start, end and padding."""
    config = theirs.config
    with torch.inference_mode():
        output = theirs.generate(
            **batch,
            num_beams=beams,
            do_sample=False,
            early_stopping=True,
            length_penalty=length_penalty,
            max_new_tokens=max_new_tokens,
            bad_words_ids=[[token] for token in sorted({config.pad_token_id, config.decoder_start_token_id})],
        )
    rows = []
    for row in output.tolist():
        row = row[1:]
        rows.append(row[: row.index(config.eos_token_id)] if config.eos_token_id in row else row)
    return rows


def our_search(
    translator: Translator, texts: list[str], *, beams: int, max_new_tokens: int, length_penalty: float = 1.0
) -> list[list[int]]:
    config = DecodingConfig(beam_size=beams, length_penalty=length_penalty, max_len_a=0.0, max_len_b=max_new_tokens)
    return translator.translate_ids([translator.tokenizer.encode(text) for text in texts], config)


# --- import ---------------------------------------------------------------------------------------


def test_marian_positions_are_sinusoids_in_halves_from_position_0() -> None:
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    table = MarianSinusoidalPositionalEmbedding(64, 512).create_weight()
    assert torch.equal(sinusoidal_table(64, 512, "halves"), table)
    interleaved = sinusoidal_table(64, 512)  # computed in float32: equal up to rounding
    assert torch.allclose(interleaved[:, marian_width_order(512)], table, rtol=0.0, atol=1e-5)


def test_import_reads_the_options_marian_adds(imported: tuple[Transformer, MarianTokenizerAdapter]) -> None:
    model, tokenizer = imported
    config = model.config
    assert config is not None
    assert (config.activation, config.positional, config.norm) == ("silu", "sinusoidal_halves", "post")
    assert config.scale_embedding and config.output_bias and config.tie_embeddings
    assert (config.eos_id, config.pad_id, config.bos_id) == (0, config.vocab_size - 1, config.vocab_size - 1)
    assert model.output_proj.weight is model.src_embed.token.weight is model.tgt_embed.token.weight
    assert tokenizer.vocab_size == config.vocab_size


def test_imported_model_gives_marians_logits(
    imported: tuple[Transformer, MarianTokenizerAdapter], theirs: MarianMTModel, their_tokenizer: MarianTokenizer
) -> None:
    assert_same_logits(imported[0], theirs, their_tokenizer)


def test_tokenizer_matches_marian_tokenizer(
    imported: tuple[Transformer, MarianTokenizerAdapter], their_tokenizer: MarianTokenizer
) -> None:
    tokenizer = imported[1]
    texts = [*SENTENCES, "Unknown letters: Ωmega ñandú!", "  spaces   around  ", "", ">>fr<< The dog runs."]
    for text in texts:
        assert [*tokenizer.encode(text), tokenizer.eos_id] == their_tokenizer(text).input_ids
        assert [*tokenizer.encode_target(text), tokenizer.eos_id] == their_tokenizer(text_target=text).input_ids
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        ids = torch.randint(0, tokenizer.vocab_size, (12,), generator=generator).tolist()
        expected = their_tokenizer.decode(ids, skip_special_tokens=True, use_source_tokenizer=False)
        assert tokenizer.decode(ids) == expected
        assert tokenizer.pieces(ids) == their_tokenizer.convert_ids_to_tokens(ids)


def test_greedy_search_matches_generate(
    imported: tuple[Transformer, MarianTokenizerAdapter], theirs: MarianMTModel, their_tokenizer: MarianTokenizer
) -> None:
    translator = Translator(*imported)
    batch = their_tokenizer(SENTENCES, return_tensors="pt", padding=True)
    expected = generate(theirs, batch, beams=1, max_new_tokens=24)
    assert our_search(translator, SENTENCES, beams=1, max_new_tokens=24) == expected
    assert translator.translate(SENTENCES, DecodingConfig(beam_size=1, max_len_a=0.0, max_len_b=24)) == [
        their_tokenizer.decode(ids, skip_special_tokens=True, use_source_tokenizer=False) for ids in expected
    ]


@pytest.mark.parametrize("length_penalty", [1.0, 0.6])
def test_beam_search_matches_generate(
    imported: tuple[Transformer, MarianTokenizerAdapter],
    theirs: MarianMTModel,
    their_tokenizer: MarianTokenizer,
    length_penalty: float,
) -> None:
    translator = Translator(*imported)
    limit = 40
    for text in SENTENCES:  # one at a time: generate() pads the batch to one max_new_tokens
        batch = their_tokenizer([text], return_tensors="pt")
        expected = generate(theirs, batch, beams=4, max_new_tokens=limit, length_penalty=length_penalty)
        assert our_search(translator, [text], beams=4, max_new_tokens=limit, length_penalty=length_penalty) == expected
    ours = our_search(translator, SENTENCES, beams=4, max_new_tokens=limit, length_penalty=length_penalty)
    assert any(2 <= len(ids) < limit - 1 for ids in ours), "no hypothesis ended early: the test would prove little"


def test_full_opus_mt_en_fr_shape(tokenizer_dir: Path, tmp_path: Path) -> None:
    """6 + 6 layers, as opus-mt-en-fr: logits and greedy translations."""
    theirs = make_marian(tokenizer_dir, tmp_path, layers=6, seed=1, eos_bias=3.0)
    their_tokenizer = MarianTokenizer.from_pretrained(tmp_path)
    model, tokenizer = import_marian(tmp_path)
    assert model.config is not None and model.config.encoder_layers == model.config.decoder_layers == 6
    assert_same_logits(model, theirs, their_tokenizer)
    batch = their_tokenizer(SENTENCES[:3], return_tensors="pt", padding=True)
    expected = generate(theirs, batch, beams=1, max_new_tokens=16)
    assert our_search(Translator(model, tokenizer), SENTENCES[:3], beams=1, max_new_tokens=16) == expected


def test_variants_without_scaling_sharing_or_tying(tokenizer_dir: Path, tmp_path: Path) -> None:
    """gelu, no sqrt(D) scaling, separate encoder/decoder embeddings, an untied lm_head."""
    changes = {"activation_function": "gelu", "scale_embedding": False, "share_encoder_decoder_embeddings": False}
    theirs = make_marian(tokenizer_dir, tmp_path / "hf", tie_word_embeddings=False, **changes)
    model, _ = import_marian(tmp_path / "hf")
    config = model.config
    assert config is not None
    assert (config.activation, config.scale_embedding, config.tie_embeddings) == ("gelu", False, False)
    assert_same_logits(model, theirs, MarianTokenizer.from_pretrained(tmp_path / "hf"))
    export_marian(model, load_tokenizer(tmp_path / "hf"), tmp_path / "back")
    again = MarianMTModel.from_pretrained(tmp_path / "back").eval()
    assert not again.config.share_encoder_decoder_embeddings and not again.config.tie_word_embeddings
    assert_same_logits(model, again, MarianTokenizer.from_pretrained(tmp_path / "back"))


def test_pytorch_model_bin_is_read_as_tensors_only(marian_dir: Path, tmp_path: Path) -> None:
    """Older opus-mt checkpoints: a pickle of tensors, with the fixed positions stored too."""
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    copy = tmp_path / "bin"
    shutil.copytree(marian_dir, copy)
    tensors = load_file(str(copy / "model.safetensors"))
    (copy / "model.safetensors").unlink()
    positions = MarianSinusoidalPositionalEmbedding(512, 512).create_weight()
    for stack in ("encoder", "decoder"):
        tensors[f"model.{stack}.embed_positions.weight"] = positions
    torch.save(tensors, copy / "pytorch_model.bin")
    model, _ = import_marian(copy)
    reference, _ = import_marian(marian_dir)
    assert_lossless(reference, model)
    tensors["model.decoder.embed_positions.weight"] = positions + 0.01  # learned ones cannot be held
    torch.save(tensors, copy / "pytorch_model.bin")
    with pytest.raises(ModelFileError, match="learned positions are not supported"):
        import_marian(copy)
    with open(copy / "pytorch_model.bin", "wb") as handle:  # a pickle that would run code if trusted
        pickle.dump({"weights": Exploit()}, handle, protocol=2)
    with pytest.raises(ModelFileError, match="weights_only") as error:
        import_marian(copy)
    assert error.value.path == copy / "pytorch_model.bin"


class Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this must never run",))


def test_import_errors_name_the_file_and_the_problem(marian_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "broken"
    shutil.copytree(marian_dir, copy)
    config_path = copy / "config.json"
    document = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**document, "model_type": "bart"}))
    with pytest.raises(ModelFileError, match="unsupported model_type 'bart'") as error:
        import_marian(copy)
    assert error.value.path == config_path
    config_path.write_text(json.dumps({**document, "activation_function": "gelu_new"}))
    with pytest.raises(ModelFileError, match="gelu_new"):
        import_marian(copy)
    config_path.write_text(json.dumps(document))
    (copy / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="weights are missing") as error:
        import_marian(copy)
    assert error.value.path == copy / "model.safetensors"
    config_path.unlink()
    with pytest.raises(ModelFileError, match="no such file") as error:
        import_marian(copy)
    assert error.value.path == config_path


# --- export ---------------------------------------------------------------------------------------


def assert_lossless(original: Transformer, again: Transformer) -> None:
    assert again.config == original.config
    first, second = original.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_export_of_an_imported_model_loads_in_transformers(
    imported: tuple[Transformer, MarianTokenizerAdapter], tmp_path: Path
) -> None:
    model, tokenizer = imported
    export_marian(model, tokenizer, tmp_path)
    theirs = MarianMTModel.from_pretrained(tmp_path).eval()
    their_tokenizer = MarianTokenizer.from_pretrained(tmp_path)
    assert_same_logits(model, theirs, their_tokenizer)
    batch = their_tokenizer(SENTENCES, return_tensors="pt", padding=True)
    assert our_search(Translator(model, tokenizer), SENTENCES, beams=1, max_new_tokens=20) == generate(
        theirs, batch, beams=1, max_new_tokens=20
    )
    assert_lossless(model, import_marian(tmp_path)[0])


def test_export_of_a_model_trained_here(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Our joint tokenizer (ids 0-3 special) and interleaved positions, as Marian."""
    texts = ["The red dog runs in the park.", "The small cat sleeps.", "The black horse swims near the house."]
    check_export(tiny_model_dir, tmp_path, texts)


@pytest.mark.slow
def test_export_of_the_bundled_model(tmp_path: Path) -> None:
    """The bundled en-fr model, exported and reloaded by transformers: same logits and translations."""
    from selfattention.cli.common import resolve_model

    texts = ["I am good.", "A dog ate the food because it was hungry.", "Two young men are playing soccer in a park."]
    check_export(resolve_model(None), tmp_path, texts)


def check_export(model_dir: Path, tmp_path: Path, texts: list[str]) -> None:
    out = tmp_path / "hf"
    assert main(["export-hf", str(model_dir), "--out", str(out)]) == 0
    model = load_model(model_dir)
    tokenizer = Tokenizer.load(model_dir)
    theirs = MarianMTModel.from_pretrained(out).eval()
    their_tokenizer = MarianTokenizer.from_pretrained(out)
    assert (theirs.config.pad_token_id, theirs.config.decoder_start_token_id, theirs.config.eos_token_id) == (0, 1, 2)
    for text in texts:
        assert their_tokenizer(text).input_ids == [*tokenizer.encode(text), 2]
    assert_same_logits(model, theirs, their_tokenizer)
    translator = Translator(model, tokenizer)
    batch = their_tokenizer(texts, return_tensors="pt", padding=True)
    expected = generate(theirs, batch, beams=1, max_new_tokens=20)
    assert our_search(translator, texts, beams=1, max_new_tokens=20) == expected
    assert translator.translate(texts, DecodingConfig(beam_size=1, max_len_a=0.0, max_len_b=20)) == [
        their_tokenizer.decode(ids, skip_special_tokens=True) for ids in expected
    ]
    for text in texts:
        one = their_tokenizer([text], return_tensors="pt")
        assert our_search(translator, [text], beams=4, max_new_tokens=30) == generate(
            theirs, one, beams=4, max_new_tokens=30
        )
    again, again_tokenizer = import_marian(out)
    assert_lossless(model, again)
    assert again_tokenizer.encode(texts[0]) == tokenizer.encode(texts[0])


def test_width_reordering_keeps_the_logits() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, dropout=0.0, output_bias=True))
    model.eval()
    halves = build_model(ModelConfig(**{**model.config.to_dict(), "positional": "sinusoidal_halves"})).eval()  # type: ignore[union-attr]
    halves.load_state_dict(permute_width(model.state_dict(), marian_width_order(16)))
    src, tgt = torch.randint(3, 30, (2, 7)), torch.randint(3, 30, (2, 5))
    with torch.no_grad():
        assert relative_error(halves(src, tgt), model(src, tgt)) <= TOLERANCE


def test_export_refuses_what_marian_cannot_hold(tmp_path: Path, tiny_model_dir: Path) -> None:
    tokenizer = Tokenizer.load(tiny_model_dir)
    for changes, problem in (({"norm": "pre"}, "pre-LN"), ({"positional": "learned"}, "learned its positions")):
        config = ModelConfig(vocab_size=tokenizer.vocab_size, d_model=16, n_heads=2, d_ff=32, **changes)
        with pytest.raises(InteropError, match=problem):
            export_marian(build_model(config), tokenizer, tmp_path)


# --- commands and directories ---------------------------------------------------------------------


def test_import_command_makes_a_model_directory_every_command_takes(
    marian_dir: Path,
    theirs: MarianMTModel,
    their_tokenizer: MarianTokenizer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "opus"
    assert main(["import-hf", str(marian_dir), "--out", str(out)]) == 0
    assert "Imported" in capsys.readouterr().out
    assert {"config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json"} <= {
        p.name for p in out.iterdir()
    }
    translator = Translator.load(out)
    assert isinstance(translator.tokenizer, MarianTokenizerAdapter)
    batch = their_tokenizer(SENTENCES[:2], return_tensors="pt", padding=True)
    expected = [
        their_tokenizer.decode(ids, skip_special_tokens=True, use_source_tokenizer=False)
        for ids in generate(theirs, batch, beams=1, max_new_tokens=12)
    ]
    assert translator.translate(SENTENCES[:2], DecodingConfig(beam_size=1, max_len_a=0.0, max_len_b=12)) == expected
    trace = trace_translation(translator.model, translator.tokenizer, SENTENCES[0], target="Le chien rouge court.")
    assert trace.source_labels[-1] == "</s>" and trace.target_labels[0] == "<s>"
    assert trace.target_ids[0] == translator.bos_id == theirs.config.decoder_start_token_id
    assert main(["import-hf", str(marian_dir), "--out", str(out)]) == 2  # no silent overwrite
    assert "already holds a model" in capsys.readouterr().err


def test_commands_report_problems_in_one_line(
    marian_dir: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["import-hf", str(tiny_model_dir), "--out", str(tmp_path / "x")]) == 2
    assert "already a selfattention model directory" in capsys.readouterr().err
    assert main(["import-hf", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
    assert "no such directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    assert main(["export-hf", str(tiny_model_dir), "--out", str(tmp_path / "z"), "--check"]) == 2
    assert "pip install 'selfattention[hf]'" in capsys.readouterr().err


def test_export_command_check(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-hf", str(tiny_model_dir), "--out", str(tmp_path / "hf"), "--check"]) == 0
    output = capsys.readouterr().out
    assert "source ids equal" in output and "greedy translations equal" in output


def test_old_configurations_read_as_before() -> None:
    config = ModelConfig.from_dict({"vocab_size": 40, "d_model": 16, "n_heads": 2, "d_ff": 32})
    assert (config.scale_embedding, config.output_bias, config.positional, config.activation) == (
        True,
        False,
        "sinusoidal",
        "relu",
    )
    assert "output_proj.bias" not in build_model(config).state_dict()
    with pytest.raises(ValueError, match="output_bias must be true or false"):
        ModelConfig(vocab_size=40, output_bias=1)  # type: ignore[arg-type]
