"""Inline case markers: ALL-CAPITALS words marked with ⇪ around SentencePiece, and given back exactly."""

from __future__ import annotations

import itertools
import json
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm
from hypothesis import given
from hypothesis import strategies as st

from selfattention.cli.common import BUNDLED_MODELS, DEFAULT_MODEL
from selfattention.data.casing import (
    CASE_MARKER,
    add_case_marker,
    has_case_marker,
    mark_capitals,
    restore_capitals,
)
from selfattention.data.tokenizer import UNK_ID, Tokenizer
from selfattention.training.config import DataConfig, load_run_config, run_config_from_dict

ENGLISH = [
    f"{subject} {verb} {place}"
    for subject, verb, place in itertools.product(
        ["The dog", "A man", "The woman", "Two children", "My friend"],
        ["is", "waits", "is going", "runs", "sings"],
        ["here.", "to the market.", "in the park!", "near the church?", "with this song."],
    )
]
FRENCH = [
    f"{subject} {verb} {place}"
    for subject, verb, place in itertools.product(
        ["Le chien", "Un homme", "La femme", "Deux enfants", "Mon ami"],
        ["est", "attend", "va", "court", "chante"],
        ["ici.", "au marché.", "dans le parc !", "près de l'église ?", "avec cette chanson."],
    )
]
FIRST_PERSON = [f"I {verb} {place}" for verb in ("am", "wait", "am going") for place in ("here.", "to the market.")]
# Every fifth sentence in capitals, as case noise puts them.
SENTENCES = [s.upper() if i % 5 == 0 else s for i, s in enumerate(ENGLISH + FRENCH + FIRST_PERSON)]

ROUND_TRIPS = [
    "",
    "I AM GOING TO THE MARKET.",
    "DO YOU KNOW THE NAME OF THIS SONG?",
    "I love NASA.",
    "L'ÉGLISE EST LÀ-BAS.",
    "PEUX-TU M'AIDER ?",
    "Où est l’ÉCOLE ?",
    "ÇA VA, ÇA VIENT !",
    "ŒUVRE ÉTÉ À NOËL",
    "I",
    "A À É",
    "Apple iPhone McDonald OpenAI",
    "MIXED case and CAPS",
    "ABC123DEF 4GB 12H30 R2D2",
    "SNAKE_CASE_NAME",
    "STRASSE STRAẞE straße ẞ",
    "İSTANBUL ISTANBUL ıi",
    "ǄUNGLA ǅungla ǆungla",
    "ﬁ ﬂ ＡＢＣ",
    "ΑΘΗΝΑ Αθήνα ΣΟΦΟΣ",
    "МОСКВА Москва",
    "東京 TOKYO 2020",
    "  two  spaces  AND  MORE  ",
    "tabs\tAND\nNEWLINES",
    "«VITE» !",
    "e-MAIL E-MAIL",
    "OK. OK? OK!",
    "a.b.C.D",
    "x" * 10 + "YY" + "z",
    "Ŀ L·L ĿĿ",
]


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("I AM GOING TO THE MARKET.", "I am⇪ going⇪ to⇪ the⇪ market⇪."),
        ("L'ÉGLISE", "L'église⇪"),
        ("I love NASA.", "I love nasa⇪."),
        ("PEUX-TU", "peux⇪-tu⇪"),
        ("I À A", "I À A"),  # single capitals stay
        ("Apple iPhone McDonald", "Apple iPhone McDonald"),  # mixed case stays
        ("ABC123DEF", "abc⇪123def⇪"),  # digits end a run
        ("STRAẞE", "STRAẞE"),  # "straße".upper() is "STRASSE": no round trip, left as it is
        ("İSTANBUL", "İSTANBUL"),  # "i̇stanbul".upper() is not "İSTANBUL"
    ],
)
def test_mark_capitals(text: str, marked: str) -> None:
    assert mark_capitals(text) == marked
    assert restore_capitals(marked) == text


def test_a_marker_in_the_input_is_removed_before_marking() -> None:
    assert mark_capitals("faux⇪ MARKER") == "faux marker⇪"
    assert mark_capitals(f"{CASE_MARKER}{CASE_MARKER}") == ""


@pytest.mark.parametrize(
    ("text", "restored"),
    [
        ("the⇪ dog⇪", "THE DOG"),
        ("abc⇪⇪ d", "ABC d"),  # repeated markers count once
        ("⇪ a", "a"),  # at the start
        ("a ⇪", "a"),  # at the end
        ("a ⇪ b", "a b"),  # between spaces: no double space
        ("a ⇪ ⇪ b", "a b"),
        ("a. ⇪b", "a. b"),
        ("a.⇪ b", "a. b"),  # after punctuation
        ("12⇪ h", "12 h"),  # after a digit
        ("a ⇪.", "a ."),
        ("mar⇪ket", "MARket"),  # inside a word: the letters before it
    ],
)
def test_restore_capitals_drops_every_marker(text: str, restored: str) -> None:
    assert restore_capitals(text) == restored


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_round_trip(text: str) -> None:
    marked = mark_capitals(text)
    assert restore_capitals(marked) == unicodedata.normalize("NFKC", text)
    # no run of capitals that could be marked is left unmarked
    unmarked = marked.replace(CASE_MARKER, "")
    assert mark_capitals(unmarked) == unmarked


@given(st.text(alphabet=st.characters(blacklist_characters=CASE_MARKER, blacklist_categories=("Cs",))))
def test_round_trip_of_any_text(text: str) -> None:
    assert restore_capitals(mark_capitals(text)) == unicodedata.normalize("NFKC", text)


@given(st.text(alphabet="AÉẞİǄbçß' -1⇪.", max_size=30))
def test_round_trip_of_capitals_and_hard_letters(text: str) -> None:
    without_markers = text.replace(CASE_MARKER, "")
    assert restore_capitals(mark_capitals(text)) == unicodedata.normalize("NFKC", without_markers)


def test_accents_written_as_combining_marks_belong_to_their_letters() -> None:
    decomposed = unicodedata.normalize("NFD", "ÉTÉ À NOËL")
    assert decomposed != "ÉTÉ À NOËL"
    assert mark_capitals(decomposed) == "été⇪ À noël⇪"
    assert restore_capitals(mark_capitals(decomposed)) == "ÉTÉ À NOËL"


# --- the vocabulary ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain() -> Tokenizer:
    return Tokenizer.train(SENTENCES, vocab_size=150)


@pytest.fixture(scope="module")
def marking() -> Tokenizer:
    return Tokenizer.train(SENTENCES, vocab_size=150, case_markers=True)


def raw_processor(tokenizer: Tokenizer) -> spm.SentencePieceProcessor:
    """SentencePiece itself on the tokenizer's model, with no casing around it."""
    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(tokenizer.model_proto)
    return processor


def test_add_case_marker_keeps_every_id_and_score(plain: Tokenizer) -> None:
    old = raw_processor(plain)
    extended = Tokenizer(add_case_marker(plain.model_proto))
    new = raw_processor(extended)
    assert extended.vocab_size == plain.vocab_size + 1
    assert [(new.id_to_piece(i), new.get_score(i)) for i in range(plain.vocab_size)] == [
        (old.id_to_piece(i), old.get_score(i)) for i in range(plain.vocab_size)
    ]
    assert new.piece_to_id(CASE_MARKER) == plain.vocab_size
    assert new.get_score(plain.vocab_size) == 0.0
    assert has_case_marker(new) and not has_case_marker(old)


def test_add_case_marker_refuses_a_model_that_has_it(plain: Tokenizer, marking: Tokenizer) -> None:
    with pytest.raises(ValueError, match="already has the case marker"):
        add_case_marker(add_case_marker(plain.model_proto))
    with pytest.raises(ValueError, match="already has the case marker"):
        marking.with_case_marker()


def test_the_marker_is_a_piece_of_its_own(plain: Tokenizer) -> None:
    processor = raw_processor(plain.with_case_marker())
    ids = processor.encode("market⇪")
    assert [processor.id_to_piece(i) for i in ids] == [*processor.encode("market", out_type=str), CASE_MARKER]
    assert processor.decode(ids) == "market⇪"


def test_a_trained_marking_vocabulary(marking: Tokenizer) -> None:
    assert marking.marks_capitals
    assert marking.piece_id(CASE_MARKER) == 4  # SentencePiece puts user-defined pieces after the special ids
    # learned from marked text: no piece holds two capitals in a row
    pieces = marking.pieces(range(marking.vocab_size))
    assert not [p for p in pieces if any(a.isupper() and b.isupper() for a, b in itertools.pairwise(p))]


def test_capitals_are_encoded_as_marked_lower_case(marking: Tokenizer) -> None:
    ids = marking.encode("THE DOG IS HERE.")
    assert ids == raw_processor(marking).encode("the⇪ dog⇪ is⇪ here⇪.")
    assert "".join(marking.pieces(ids)) == "▁the⇪▁dog⇪▁is⇪▁here⇪."
    marker = marking.piece_id(CASE_MARKER)
    assert ids.count(marker) == 4 and ids[-2] == marker
    assert ids[: ids.index(marker)] == marking.encode("the")  # the word keeps its lower-case pieces
    assert marking.encode_target("THE DOG IS HERE.") == ids
    assert marking.encode_batch(["THE DOG IS HERE.", "Le chien"]) == [ids, marking.encode("Le chien")]


@pytest.mark.parametrize(
    "text",
    ["THE DOG IS HERE.", "I AM GOING TO THE MARKET.", "LE CHIEN VA AU MARCHÉ !", "Mon ami chante ICI.", "I love NASA."],
)
def test_capitals_come_back_on_decoding(marking: Tokenizer, text: str) -> None:
    ids = marking.encode(text)
    assert UNK_ID not in ids
    assert marking.decode(ids) == text


def test_a_marker_typed_by_a_user_is_not_one(marking: Tokenizer) -> None:
    assert marking.encode("the⇪ dog") == marking.encode("the dog")


def test_a_vocabulary_without_the_marker_is_unchanged(plain: Tokenizer) -> None:
    assert not plain.marks_capitals
    processor = raw_processor(plain)
    for text in ["THE DOG IS HERE.", "I love NASA.", "the⇪ dog", *SENTENCES[:20]]:
        assert plain.encode(text) == processor.encode(text)
        assert plain.decode(plain.encode(text)) == processor.decode(processor.encode(text))
    assert plain.encode_batch(SENTENCES) == processor.encode(SENTENCES)


def test_a_marker_learned_as_an_ordinary_character_does_not_mark() -> None:
    """A corpus that writes ⇪ gives a normal piece: only a user-defined one turns marking on."""
    tokenizer = Tokenizer.train([*SENTENCES[:100], "Press ⇪ to lock CAPITALS."], vocab_size=100)
    assert tokenizer.piece_id(CASE_MARKER) != UNK_ID
    assert not has_case_marker(raw_processor(tokenizer))
    assert not tokenizer.marks_capitals


def test_the_bundled_vocabulary_marks_capitals() -> None:
    """The bundled model reads a shouted sentence as the marker and the lower-case words it knows."""
    tokenizer = Tokenizer.load(BUNDLED_MODELS / DEFAULT_MODEL)
    assert tokenizer.marks_capitals
    text = "DO YOU KNOW THE NAME OF THIS SONG?"
    ids = tokenizer.encode(text)
    assert ids.count(tokenizer.piece_id(CASE_MARKER)) == 8  # one a word
    assert [p for p in tokenizer.pieces(ids) if p != CASE_MARKER] == raw_processor(tokenizer).encode(
        text.lower(), out_type=str
    )
    assert tokenizer.decode(ids) == text


def test_with_case_marker_survives_save_and_load(plain: Tokenizer, tmp_path: Path) -> None:
    extended = plain.with_case_marker()
    assert extended.marks_capitals and not plain.marks_capitals
    loaded = Tokenizer.load(extended.save(tmp_path))
    assert loaded.marks_capitals
    assert loaded.vocab_size == plain.vocab_size + 1
    ids = loaded.encode("THE DOG IS HERE.")
    assert ids.count(plain.vocab_size) == 4  # the marker, at the old vocabulary size
    assert loaded.decode(ids) == "THE DOG IS HERE."
    assert loaded.encode("The dog is here.") == plain.encode("The dog is here.")


# --- the configuration switch --------------------------------------------------------------------


def test_the_switch_round_trips_through_toml_and_json(tmp_path: Path) -> None:
    config = run_config_from_dict({"data": {"case_markers": True}})
    assert config.data.case_markers and not DataConfig().case_markers
    printed = tmp_path / "printed.toml"
    printed.write_text(config.to_toml(), encoding="utf-8")  # what --print-config writes
    assert "case_markers = true" in printed.read_text(encoding="utf-8")
    assert load_run_config(printed) == config
    recorded = json.loads(json.dumps(config.to_dict()))  # what run_config.json holds
    assert recorded["data"]["case_markers"] is True
    assert run_config_from_dict({"data": recorded["data"]}).data == config.data
    assert load_run_config(printed, ["data.case_markers=false"]).data.case_markers is False


def test_the_switch_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="case_markers should be bool"):
        run_config_from_dict({"data": {"case_markers": "yes"}})
    with pytest.raises(ValueError, match="case_markers should be bool"):
        run_config_from_dict({"data": {"case_markers": 1}})


def test_a_marking_vocabulary_written_as_a_marian_pair_still_marks(marking: Tokenizer, tmp_path: Path) -> None:
    """Exported (export-hf, export-ct2) and read back, the tokenizer marks and restores as ours does."""
    from selfattention.data.marian_tokenizer import MarianTokenizerAdapter

    MarianTokenizerAdapter.from_tokenizer(marking).save(tmp_path)
    pair = MarianTokenizerAdapter.load(tmp_path)
    for text in ("THE DOG IS HERE.", "I love NASA.", "the dog is here."):
        assert pair.encode(text) == marking.encode(text)
        assert pair.encode_target(text) == marking.encode(text)
        assert pair.decode(pair.encode(text)) == text
