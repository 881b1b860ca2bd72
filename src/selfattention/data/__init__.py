"""Corpora, the subword tokenizer, and batching."""

from selfattention.data.batching import Batch, Example, collate, make_example, token_batches
from selfattention.data.corpora import CORPORA, find_data_dir, load_corpus, tatoeba_split
from selfattention.data.parallel import Pair, read_parallel, read_tsv
from selfattention.data.text_files import CorpusError
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, TokenizerError

__all__ = [
    "BOS_ID",
    "CORPORA",
    "EOS_ID",
    "PAD_ID",
    "UNK_ID",
    "Batch",
    "CorpusError",
    "Example",
    "Pair",
    "Tokenizer",
    "TokenizerError",
    "collate",
    "find_data_dir",
    "load_corpus",
    "make_example",
    "read_parallel",
    "read_tsv",
    "tatoeba_split",
    "token_batches",
]
