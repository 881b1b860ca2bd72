"""Seeing the steps: traces of every attention call, step-by-step explanations, pictures."""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.inspection.explain import HeadExplanation, explain_head, render_explanation
    from selfattention.inspection.recorder import KINDS, AttentionKind, AttentionStep, TraceRecorder
    from selfattention.inspection.toy import toy_attention
    from selfattention.inspection.tracing import TranslationTrace, token_labels, trace_ids, trace_translation

__getattr__ = lazy.exports(
    __name__,
    {
        "HeadExplanation": "selfattention.inspection.explain",
        "explain_head": "selfattention.inspection.explain",
        "render_explanation": "selfattention.inspection.explain",
        "KINDS": "selfattention.inspection.recorder",
        "AttentionKind": "selfattention.inspection.recorder",
        "AttentionStep": "selfattention.inspection.recorder",
        "TraceRecorder": "selfattention.inspection.recorder",
        "toy_attention": "selfattention.inspection.toy",
        "TranslationTrace": "selfattention.inspection.tracing",
        "token_labels": "selfattention.inspection.tracing",
        "trace_ids": "selfattention.inspection.tracing",
        "trace_translation": "selfattention.inspection.tracing",
    },
)

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
