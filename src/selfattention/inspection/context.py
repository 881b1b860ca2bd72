"""Contextual meaning: one word's vector, sentence by sentence, layer by layer.

"I love Apple phones" and "I love apple juice": the word starts from its (static) embedding and
each encoder layer mixes in its neighbours. The cosine similarity of the word's vectors in two
sentences shows how far context has pulled them apart; the nearest vocabulary pieces to the
last layer's vector show which way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding.sentences import check_pieces
from selfattention.decoding.translator import max_source_length, special_ids
from selfattention.inspection.notation import piece_label
from selfattention.inspection.recorder import TraceRecorder
from selfattention.inspection.tracing import special_labels, token_labels
from selfattention.inspection.words import find_word, group_words
from selfattention.model import Transformer


@dataclass(frozen=True)
class WordInContext:
    sentence: str
    word: str  # as written in the sentence
    pieces: list[str]
    position: int  # of the word's first piece, from 0
    vectors: Tensor  # (layers + 1, D): the embedding layer, then each encoder layer's output


@dataclass(frozen=True)
class ContextReport:
    words: list[WordInContext]
    layer_names: list[str]  # "embedding", "layer 0", ...
    similarity: Tensor  # (layers + 1, N, N) cosine similarity between the sentences' vectors
    neighbours: list[list[tuple[str, float]]]  # per sentence: nearest vocabulary pieces, last layer


def word_in_context(model: Transformer, tokenizer: SubwordTokenizer, sentence: str, word: str) -> WordInContext:
    """The word's vector (mean over its pieces) after the embeddings and after each encoder layer."""
    _, _, eos_id = special_ids(model)
    ids = [*tokenizer.encode(sentence), eos_id]
    check_pieces(ids[:-1], max_source_length(model))
    labels = token_labels(tokenizer, ids, special_labels(model))
    words = group_words(labels)
    index = find_word(words, word)
    positions = list(words[index].pieces)
    recorder = TraceRecorder(kinds=())  # the layers' outputs only: every attention call runs fused
    with torch.inference_mode():
        model.encode(torch.tensor([ids], device=next(model.parameters()).device), recorder=recorder)
    layers = [recorder.hidden("encoder", layer) for layer in range(-1, len(model.encoder.layers))]
    vectors = torch.stack([hidden[0, positions].mean(dim=0) for hidden in layers])  # (L + 1, D)
    return WordInContext(
        sentence, words[index].text, [labels[p] for p in positions], positions[0], vectors.float().cpu()
    )


def compare_contexts(
    model: Transformer, tokenizer: SubwordTokenizer, sentences: list[str], word: str, *, top_k: int = 8
) -> ContextReport:
    """The word in every sentence: pairwise cosine similarity per layer, and nearest pieces."""
    if len(sentences) < 2:
        raise ValueError("give at least two sentences that share the word")
    found = [word_in_context(model, tokenizer, sentence, word) for sentence in sentences]
    stacked = torch.stack([w.vectors for w in found], dim=1)  # (L + 1, N, D)
    normed = F.normalize(stacked, dim=-1)
    similarity = normed @ normed.transpose(-2, -1)  # (L + 1, N, N)
    embedding = F.normalize(model.src_embed.token.weight.detach().float().cpu(), dim=-1)  # (V, D)
    neighbours = []
    for w in found:
        cosine = embedding @ F.normalize(w.vectors[-1], dim=0)
        values, indices = cosine.topk(min(top_k, cosine.numel()))  # at most the whole vocabulary
        pieces = [piece_label(piece) for piece in tokenizer.pieces(indices.tolist())]
        neighbours.append([(piece, float(value)) for piece, value in zip(pieces, values, strict=True)])
    names = ["embedding"] + [f"layer {i}" for i in range(stacked.shape[0] - 1)]
    return ContextReport(found, names, similarity, neighbours)
