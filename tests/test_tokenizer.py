"""The joint English-French SentencePiece tokenizer: fixed special ids, exact round trips, files."""

from __future__ import annotations

import itertools
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm

from selfattention.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TOKENIZER_FILE,
    UNK_ID,
    Tokenizer,
    TokenizerError,
)

ENGLISH = [
    f"{subject} {verb} {place}"
    for subject, verb, place in itertools.product(
        ["A man", "The woman", "Two dogs", "A little girl", "The old sailor", "Three children"],
        ["is walking", "runs", "looks around", "is playing", "waits"],
        ["in the park.", "on the beach!", "near the café?", "with a red ball.", "outside: it's cold."],
    )
]
FRENCH = [
    f"{subject} {verb} {place}"
    for subject, verb, place in itertools.product(
        ["Un homme", "La femme", "Deux chiens", "Une petite fille", "Le vieux marin", "Trois enfants"],
        ["marche", "court", "regarde", "joue", "attend"],
        [
            "dans le parc.",
            "sur la plage !",
            "près du café ?",
            "avec une balle rouge.",
            "dehors : il fait froid.",
            "à l'école, « vite » !",
            "où est l'été ?",
            "qu'il voit : « déjà » !",
            "aujourd’hui, à Noël.",  # typographic apostrophe U+2019
            "l'œuf de Pâques ; ça y est ?",
        ],
    )
]
SENTENCES = ENGLISH + FRENCH


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(SENTENCES, vocab_size=200)


def test_training_corpus_is_what_the_tests_claim() -> None:
    assert len(SENTENCES) == 450
    text = "".join(SENTENCES)
    for needed in ["'", "’", "«", "»", "é", "à", "ç", "œ", "ù", " ?", " !", " :"]:
        assert needed in text
    # Every sentence is already NFKC-normal, so an exact round trip is a fair demand.
    assert all(unicodedata.normalize("NFKC", s) == s for s in SENTENCES)


def test_special_ids(tokenizer: Tokenizer) -> None:
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert tokenizer.pieces([0, 1, 2, 3]) == ["<pad>", "<s>", "</s>", "<unk>"]
    assert tokenizer.piece_id("<pad>") == 0
    assert tokenizer.piece_id("<s>") == 1
    assert tokenizer.piece_id("</s>") == 2
    assert tokenizer.piece_id("<unk>") == 3


def test_vocabulary_size(tokenizer: Tokenizer) -> None:
    # hard_vocab_limit is off: a small corpus may give fewer pieces than asked, never more.
    assert 4 + 40 < tokenizer.vocab_size <= 200


def test_encode_has_no_markers_and_no_unknowns(tokenizer: Tokenizer) -> None:
    for sentence in SENTENCES:
        ids = tokenizer.encode(sentence)
        assert ids, sentence
        assert all(UNK_ID < i < tokenizer.vocab_size for i in ids), sentence


def test_round_trip_is_exact(tokenizer: Tokenizer) -> None:
    different = [(s, tokenizer.decode(tokenizer.encode(s))) for s in SENTENCES]
    assert [(s, d) for s, d in different if s != d] == []


def test_round_trip_of_unseen_combination(tokenizer: Tokenizer) -> None:
    sentence = "Deux enfants attendent près de l'école : « où est le marin ? »"
    assert tokenizer.decode(tokenizer.encode(sentence)) == sentence


def test_pieces_mark_word_starts(tokenizer: Tokenizer) -> None:
    pieces = tokenizer.pieces(tokenizer.encode("Un homme court."))
    assert "".join(pieces).replace("▁", " ").strip() == "Un homme court."
    assert pieces[0].startswith("▁")


def test_nfkc_normalisation_is_documented(tokenizer: Tokenizer) -> None:
    # SentencePiece's default nmt_nfkc normalisation is not undone on decoding: the no-break
    # spaces French typography puts before ? ! : (U+00A0, U+202F, which Tatoeba's French
    # uses) come back as plain spaces, and compatibility characters such as the ellipsis
    # "…" or the ligature "ﬁ" come back decomposed. BLEU and chrF treat all of these spaces
    # alike; the round trip is exact only for NFKC-normal text with ordinary spaces.
    assert tokenizer.decode(tokenizer.encode("Un homme court\u202f!")) == "Un homme court !"
    assert tokenizer.decode(tokenizer.encode("Un homme court\u00a0?")) == "Un homme court ?"
    assert tokenizer.decode(tokenizer.encode("Un homme…")) == "Un homme..."
    # Runs of spaces collapse, and leading and trailing spaces go.
    assert tokenizer.decode(tokenizer.encode("  Un   homme court. ")) == "Un homme court."


def test_unknown_character_is_unk(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("Un Ж homme")
    assert UNK_ID in ids
    assert ids.count(UNK_ID) == 1


def test_encode_batch_matches_encode(tokenizer: Tokenizer) -> None:
    batch = [*SENTENCES[::7], "", "Ж"]
    assert tokenizer.encode_batch(batch) == [tokenizer.encode(s) for s in batch]
    assert tokenizer.encode_batch([]) == []
    assert all(type(ids) is list for ids in tokenizer.encode_batch(batch))


def test_decode_drops_pad_bos_eos(tokenizer: Tokenizer) -> None:
    sentence = "La femme joue sur la plage !"
    ids = tokenizer.encode(sentence)
    assert tokenizer.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == sentence
    assert tokenizer.decode([PAD_ID, BOS_ID, EOS_ID]) == ""
    assert tokenizer.decode([]) == ""


def test_decode_accepts_tensors_and_numpy_ints(tokenizer: Tokenizer) -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    sentence = "Trois enfants courent."
    ids = [BOS_ID, *tokenizer.encode(sentence), EOS_ID, PAD_ID]
    assert tokenizer.decode(torch.tensor(ids)) == tokenizer.decode(ids)
    assert tokenizer.decode(np.array(ids, dtype=np.int64)) == tokenizer.decode(ids)


def test_save_and_load_give_identical_ids(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tokenizer.save(tmp_path / "vocab.model")
    assert path == tmp_path / "vocab.model"
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was moved into place
    loaded = Tokenizer.load(path)
    assert loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode_batch(SENTENCES) == tokenizer.encode_batch(SENTENCES)
    assert loaded.pieces(range(loaded.vocab_size)) == tokenizer.pieces(range(tokenizer.vocab_size))
    assert Tokenizer.load(str(path)).encode(SENTENCES[0]) == tokenizer.encode(SENTENCES[0])


def test_save_and_load_a_directory(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tokenizer.save(tmp_path)
    assert path == tmp_path / TOKENIZER_FILE
    assert Tokenizer.load(tmp_path).encode_batch(SENTENCES) == tokenizer.encode_batch(SENTENCES)


def test_save_overwrites(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "t.model"
    path.write_bytes(b"old")
    tokenizer.save(path)
    assert Tokenizer.load(path).encode(SENTENCES[-1]) == tokenizer.encode(SENTENCES[-1])


@pytest.mark.parametrize("content", [b"not a sentencepiece model", b"", bytes(range(256))])
def test_loading_a_non_sentencepiece_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(content)
    with pytest.raises(TokenizerError) as info:
        Tokenizer.load(path)
    assert str(path) in str(info.value)
    assert "not a SentencePiece model" in str(info.value)


def test_loading_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError) as info:
        Tokenizer.load(tmp_path / "missing.model")
    assert str(tmp_path / "missing.model") in str(info.value)
    with pytest.raises(TokenizerError) as info:
        Tokenizer.load(tmp_path)  # a directory without tokenizer.model
    assert str(tmp_path / TOKENIZER_FILE) in str(info.value)


def test_loading_a_model_with_other_special_ids(tmp_path: Path) -> None:
    # A valid SentencePiece model with SentencePiece's own defaults (unk 0, bos 1, eos 2, no pad)
    # would shift every id: it must be refused, not silently used.
    import io

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES),
        model_writer=model,
        vocab_size=60,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    path = tmp_path / "foreign.model"
    path.write_bytes(model.getvalue())
    with pytest.raises(TokenizerError) as info:
        Tokenizer.load(path)
    assert str(path) in str(info.value)
    assert "special ids" in str(info.value)
