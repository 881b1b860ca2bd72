"""Supervised attention: one encoder head taught to attend from "it" to the noun it refers to.

In the manner of LISA (Strubell et al. 2018, "Linguistically-Informed Self-Attention for Semantic
Role Labeling"), an auxiliary loss trains ONE chosen self-attention head of the encoder: at the
query position of "it", its attention weights should fall on the antecedent noun's pieces. For a
linked sentence with weights ``a`` over its keys (the row of "it") and key positions ``K``:

    loss = -log(sum over k in K of a[k] + 1e-6)

averaged over the linked sentences, times ``train.antecedent_weight``. No other head, and no other
query of this head, is given a target; the auxiliary gradient still reaches the layers below (and
the embeddings) through this head's input, and this head's W_Q and W_K, which all its queries
share, as any loss's does. The links come from the pronoun pairs (data/pronoun_pairs.py,
data/links.py).

The model's forward pass is untouched (training keeps the fused attention kernel, which never
builds the weights): a forward pre-hook on the chosen layer's ``self_attn`` captures its input
(the layer input, or its LayerNorm for a pre-LN model) and mask, and :func:`head_attention`
recomputes that one head's weights for the linked rows only, the seeds' recipe on one query:
W_Q and W_K projections of the head's slice, similarity scores, scaling by sqrt(d_k), padding
keys masked, softmax. The softmax is computed in float32, under autocast too; the weights are
those before attention dropout (the logits are the same with or without it), which is what the
attention views show.

Shapes: B batch, N linked sentences, S source length, D model width, Dh head width.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfattention.attention import MultiHeadAttention
from selfattention.attention.core import masked_softmax, scale_scores, similarity_scores
from selfattention.data.batching import Batch
from selfattention.model import Transformer

EPSILON = 1e-6  # inside the log: a head that gives the antecedent nothing costs -log(1e-6), not infinity


def head_attention(
    attention: MultiHeadAttention, x: Tensor, mask: Tensor | None, head: int, rows: Tensor, queries: Tensor
) -> Tensor:
    """One head's attention weights ``(N, S)``, float32, from query ``queries[i]`` of batch row ``rows[i]``.

    ``x`` ``(B, S, D)`` is the self-attention's input and ``mask`` its mask (True = may attend,
    broadcasting to ``(B, H, S, S)``), as the module received them.
    """
    width = attention.head_dim
    columns = slice(head * width, (head + 1) * width)  # the head's slice of the (D, D) projections
    q_bias = None if attention.q_proj.bias is None else attention.q_proj.bias[columns]
    k_bias = None if attention.k_proj.bias is None else attention.k_proj.bias[columns]
    q = F.linear(x[rows, queries], attention.q_proj.weight[columns], q_bias)  # (N, Dh)
    k = F.linear(x[rows], attention.k_proj.weight[columns], k_bias)  # (N, S, Dh)
    with torch.autocast(device_type=x.device.type, enabled=False):
        scores = similarity_scores(q.float()[:, None, :], k.float())[:, 0]  # (N, S)
        scaled_scores = scale_scores(scores, width)
        allowed = None
        if mask is not None:
            length = x.shape[1]
            allowed = mask.expand(x.shape[0], attention.n_heads, length, length)[rows, head, queries]  # (N, S)
        return masked_softmax(scaled_scores, allowed)


def antecedent_nll(weights: Tensor, keys: Tensor) -> Tensor:
    """``(N,)``: -log of each row's weight on its key positions (``keys`` ``(N, S)`` boolean), plus 1e-6."""
    return -torch.log((weights * keys).sum(dim=-1) + EPSILON)


@dataclass
class _Captured:
    x: Tensor | None = None
    mask: Tensor | None = None


class AntecedentSupervision:
    """The auxiliary loss on encoder layer ``layer``, head ``head`` of ``model``.

    Run the model's forward pass inside :meth:`capturing`, then :meth:`losses` gives each linked
    sentence's loss, unweighted: the trainer averages them over its step and applies
    ``train.antecedent_weight``.
    """

    def __init__(self, model: Transformer, layer: int, head: int) -> None:
        layers = model.encoder.layers
        if not 0 <= layer < len(layers):
            raise ValueError(f"encoder layer {layer} out of range: the model has {len(layers)}")
        self.attention: MultiHeadAttention = layers[layer].self_attn  # type: ignore[assignment]
        if not 0 <= head < self.attention.n_heads:
            raise ValueError(f"head {head} out of range: the model has {self.attention.n_heads}")
        self.layer, self.head = layer, head
        self._captured = _Captured()

    @contextlib.contextmanager
    def capturing(self, batch: Batch) -> Iterator[None]:
        """Keep the chosen layer's self-attention input of this forward pass, when ``batch`` has links.

        A batch without links registers nothing: it costs nothing.
        """
        self._captured = _Captured()
        if batch.link_query is None:  # collate makes link tensors only for a batch with a link
            yield
            return
        handle = self.attention.register_forward_pre_hook(self._capture, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def _capture(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        query = args[0] if args else kwargs["query"]
        key_value = args[1] if len(args) > 1 else kwargs.get("key_value")
        if key_value is not None:  # not self-attention: never the encoder's
            return
        self._captured = _Captured(query, args[2] if len(args) > 2 else kwargs.get("mask"))

    def attention_weights(self, batch: Batch) -> Tensor | None:
        """The head's weights ``(N, S)`` at the linked rows' queries, from the captured forward pass."""
        rows = _linked_rows(batch)
        x = self._captured.x
        if rows is None or x is None or batch.link_query is None:
            return None
        return head_attention(self.attention, x, self._captured.mask, self.head, rows, batch.link_query[rows])

    def losses(self, batch: Batch) -> Tensor | None:
        """``(N,)`` unweighted losses of the batch's linked sentences, or None when it has none."""
        weights = self.attention_weights(batch)
        rows = _linked_rows(batch)
        self._captured = _Captured()  # the captured input is no longer needed
        if weights is None or rows is None or batch.link_keys is None:
            return None
        return antecedent_nll(weights, batch.link_keys[rows])


def _linked_rows(batch: Batch) -> Tensor | None:
    """``(N,)`` the batch rows with a link, or None when none has."""
    if batch.link_query is None:
        return None
    rows = (batch.link_query >= 0).nonzero().flatten()
    return rows if len(rows) else None
