"""Scores of translations against references: sacreBLEU, chrF, and Multi30k-comparable BLEU.

``bleu`` and ``chrf`` are sacreBLEU's defaults on detokenised, cased text. Published Multi30k
results are on lower-cased, Moses-tokenised text instead; ``comparable_bleu`` lower-cases the
output, tokenises it with the Moses tokenizer for French (``escape=True``, as the official
references were made) and scores it against the official tokenised references with no further
tokenisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.model import Transformer


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float
    signature: str

    def __str__(self) -> str:
        return f"BLEU {self.bleu:.2f}  chrF {self.chrf:.2f}  ({self.signature})"


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} translations but {len(references)} references: they must pair up line by line"
        )


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Cased, detokenised sacreBLEU and chrF."""
    _check(hypotheses, references)
    bleu = sacrebleu.metrics.BLEU()
    result = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf = sacrebleu.metrics.CHRF().corpus_score(list(hypotheses), [list(references)])
    return Scores(result.score, chrf.score, str(bleu.get_signature()))


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    _check(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def moses_lowercase_tokens(texts: Sequence[str], lang: str = "fr") -> list[str]:
    """Lower-cased, Moses-tokenised text, as the official Multi30k references are written."""
    from sacremoses import MosesTokenizer

    tokenizer = MosesTokenizer(lang=lang)
    return [tokenizer.tokenize(text.lower(), escape=True, return_str=True) for text in texts]


def comparable_bleu(hypotheses: Sequence[str], tokenised_references: Sequence[str], lang: str = "fr") -> float:
    """BLEU as published Multi30k results compute it (``sacrebleu --tokenize none --force``)."""
    _check(hypotheses, tokenised_references)
    result = sacrebleu.corpus_bleu(
        moses_lowercase_tokens(hypotheses, lang), [list(tokenised_references)], tokenize="none", force=True
    )
    return float(result.score)


def greedy_bleu(model: Transformer, tokenizer: SubwordTokenizer, pairs: Sequence[tuple[str, str]]) -> float:
    """BLEU of greedy translations of ``pairs`` (source, reference): the trainer's validation score."""
    hypotheses = Translator(model, tokenizer).translate(
        [s for s, _ in pairs], DecodingConfig(beam_size=1, batch_size=64)
    )
    return bleu(hypotheses, [t for _, t in pairs])
