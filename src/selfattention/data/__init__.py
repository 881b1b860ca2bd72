"""Corpora, the subword tokenizer, and batching."""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.data.batching import Batch, Example, collate, make_example, token_batches
    from selfattention.data.corpora import CORPORA, find_data_dir, load_corpus, tatoeba_split
    from selfattention.data.parallel import Pair, read_parallel, read_tsv
    from selfattention.data.text_files import CorpusError
    from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, TokenizerError

__getattr__ = lazy.exports(
    __name__,
    {
        "Batch": "selfattention.data.batching",
        "Example": "selfattention.data.batching",
        "collate": "selfattention.data.batching",
        "make_example": "selfattention.data.batching",
        "token_batches": "selfattention.data.batching",
        "CORPORA": "selfattention.data.corpora",
        "find_data_dir": "selfattention.data.corpora",
        "load_corpus": "selfattention.data.corpora",
        "tatoeba_split": "selfattention.data.corpora",
        "Pair": "selfattention.data.parallel",
        "read_parallel": "selfattention.data.parallel",
        "read_tsv": "selfattention.data.parallel",
        "CorpusError": "selfattention.data.text_files",
        "BOS_ID": "selfattention.data.tokenizer",
        "EOS_ID": "selfattention.data.tokenizer",
        "PAD_ID": "selfattention.data.tokenizer",
        "UNK_ID": "selfattention.data.tokenizer",
        "Tokenizer": "selfattention.data.tokenizer",
        "TokenizerError": "selfattention.data.tokenizer",
    },
)

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
