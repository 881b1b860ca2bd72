"""Seed 001's tiny worked example: "love Apple phones" with 2-dimensional vectors.

The seed gives the raw score matrix [[1, 1, 0], [2, 3, 2], [2, 4, 4]], scales it by sqrt(2), and
finds Apple's weights about 0.25 / 0.50 / 0.25. The embeddings and W_K below are the ones that
produce exactly those scores with W_Q the identity (as the seed says); the seed's W_V did not
survive in its text, so it is the identity too, which makes V = X.
"""

from __future__ import annotations

import torch

from selfattention.attention import explicit_attention
from selfattention.inspection.recorder import AttentionStep, TraceRecorder

TOY_TOKENS = ["love", "Apple", "phones"]
TOY_EMBEDDINGS = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])  # (3, 2) rows: love, Apple, phones
TOY_W_Q = torch.eye(2)
TOY_W_K = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
TOY_W_V = torch.eye(2)


def toy_attention() -> AttentionStep:
    """Run the toy example through the real attention code and return its recorded steps."""
    x = TOY_EMBEDDINGS
    q, k, v = x @ TOY_W_Q, x @ TOY_W_K, x @ TOY_W_V  # (3, 2) each
    recorder = TraceRecorder()
    site = recorder.at("encoder.layers.0.self_attn")
    q4, k4, v4 = (t[None, None] for t in (q, k, v))  # (1, 1, 3, 2): one sentence, one head
    for name, value in (("x", x[None]), ("q", q4), ("k", k4), ("v", v4)):
        site.record(name, value)
    output, _ = explicit_attention(q4, k4, v4, recorder=site)
    site.record("attended", output[:, 0])
    return recorder.attention("encoder", 0)
