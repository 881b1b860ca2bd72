"""The attention mechanism: masks, scaled dot-product attention, multi-head attention, KV cache."""

from selfattention.attention.cache import KVCache
from selfattention.attention.core import chunked_attention, explicit_attention, scaled_dot_product_attention
from selfattention.attention.masks import (
    causal_mask,
    combine_masks,
    lengths_mask,
    padding_and_causal_mask,
    padding_mask,
)
from selfattention.attention.multi_head import MultiHeadAttention
from selfattention.attention.recording import Recorder

__all__ = [
    "KVCache",
    "MultiHeadAttention",
    "Recorder",
    "causal_mask",
    "chunked_attention",
    "combine_masks",
    "explicit_attention",
    "lengths_mask",
    "padding_and_causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
]
