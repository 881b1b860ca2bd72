"""Seeing the steps: traces of every attention call, step-by-step explanations, pictures."""

from selfattention.inspection.explain import HeadExplanation, explain_head, render_explanation
from selfattention.inspection.recorder import KINDS, AttentionKind, AttentionStep, TraceRecorder
from selfattention.inspection.toy import toy_attention

__all__ = [
    "KINDS",
    "AttentionKind",
    "AttentionStep",
    "HeadExplanation",
    "TraceRecorder",
    "explain_head",
    "render_explanation",
    "toy_attention",
]
