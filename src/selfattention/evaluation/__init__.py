"""How good a translation is: scores against references (BLEU, chrF), the checks of the seeds'
sentences, the everyday development sets, and degenerate outputs."""

from selfattention.evaluation.scores import (
    Scores,
    bleu,
    comparable_bleu,
    greedy_bleu,
    moses_lowercase_tokens,
    score,
)

__all__ = ["Scores", "bleu", "comparable_bleu", "greedy_bleu", "moses_lowercase_tokens", "score"]
