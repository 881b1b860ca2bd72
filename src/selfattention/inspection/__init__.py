"""Seeing the steps: traces of every attention call, step-by-step explanations, pictures."""

from selfattention.inspection.explain import HeadExplanation, explain_head, render_explanation
from selfattention.inspection.recorder import KINDS, AttentionKind, AttentionStep, TraceRecorder
from selfattention.inspection.toy import toy_attention
from selfattention.inspection.tracing import TranslationTrace, token_labels, trace_ids, trace_translation

__all__ = [
    "KINDS",
    "AttentionKind",
    "AttentionStep",
    "HeadExplanation",
    "TraceRecorder",
    "TranslationTrace",
    "explain_head",
    "render_explanation",
    "token_labels",
    "toy_attention",
    "trace_ids",
    "trace_translation",
]
