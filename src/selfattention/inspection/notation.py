"""How a subword piece is written wherever one is shown: the page, the pictures, the CLI.

A piece that starts a word is shown bare ("dog"); a piece that continues the word before it gets
``##`` ("hung", "##ry"); a piece that is only the start of a word, its letters in the ``##``
pieces after it, is ``␣`` (SentencePiece writes it ``▁``). ``<s>`` starts the French and
``</s>`` ends a sentence.
"""

from __future__ import annotations

from selfattention.data.tokenizer import WORD_START

CONTINUES = "##"
LONE_WORD_START = "␣"
PIECES_NOTE = (
    "Tokens are subword pieces: ## marks a piece that continues the word before it, "
    "␣ a word start whose letters follow in ## pieces; <s> starts the French and </s> ends a sentence."
)


def piece_label(piece: str) -> str:
    """A SentencePiece piece in this notation: ``▁dog`` → ``dog``, ``ry`` → ``##ry``, ``▁`` → ``␣``."""
    if piece.startswith(WORD_START):
        return piece[len(WORD_START) :] or LONE_WORD_START
    return CONTINUES + piece
