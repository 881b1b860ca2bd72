"""Why "il" and not "elle": two sentences that differ in one word, side by side.

"The dog ate the soup because it was hungry" / "... because it was delicious": the change of one
word makes "it" mean the dog or the soup, and French must say il or elle. For the two sentences:

- both translations;
- at the step where each translation writes its pronoun, the probability of each choice (il,
  elle) there: the probability of all the choice's pieces written after the same French prefix
  (after "qu'" too), one after the other;
- every encoder head's attention from "it" to each of the two antecedents, in both sentences, and
  how far it moves between them: ``shift = (to A − to B in sentence 1) − (to A − to B in sentence 2)``.
  The heads with the largest shift are those whose attention follows the meaning.

The antecedents are given, or found as the nouns after a determiner before the pronoun ("the dog",
"the soup"); the pronoun is "it" by default. Works on any model: with an untrained one the numbers
are simply small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from selfattention.data.tokenizer import WORD_START, SubwordTokenizer
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection.antecedents import DETERMINERS
from selfattention.inspection.tracing import TranslationTrace, trace_translation
from selfattention.inspection.words import Word, find_word, group_words, word_attention
from selfattention.model import Transformer

CHOICES = ("il", "elle")


@dataclass(frozen=True)
class PronounStep:
    """Where a translation writes its pronoun, and how likely each choice was there."""

    index: int | None  # the decoder step (position in the translation's pieces); None: no choice written
    written: str | None  # the choice written there
    probabilities: dict[str, float]  # each choice's probability at that step


@dataclass(frozen=True)
class HeadShift:
    layer: int
    head: int
    first: tuple[float, float]  # sentence 1: attention from the pronoun to antecedent A, to antecedent B
    second: tuple[float, float]  # sentence 2: the same
    shift: float  # (A − B in sentence 1) − (A − B in sentence 2)


@dataclass(frozen=True)
class Contrast:
    sentences: tuple[str, str]
    translations: tuple[str, str]
    pronoun: str
    antecedents: tuple[str, str]
    choices: tuple[str, ...]
    steps: tuple[PronounStep, PronounStep]
    heads: list[HeadShift]  # every encoder layer and head, the largest |shift| first


def contrast(
    translator: Translator,
    first: str,
    second: str,
    *,
    pronoun: str = "it",
    antecedents: Sequence[str] | None = None,
    choices: Sequence[str] = CHOICES,
    decoding: DecodingConfig | None = None,
) -> Contrast:
    """Translate both sentences and compare the pronoun's choice and the heads' attention from it.

    Raises ``ValueError`` (with a message that names the words there are) when the pronoun or an
    antecedent is not in a sentence, or when the antecedents cannot be found.
    """
    if len(choices) < 2:
        raise ValueError("give at least two choices to compare (e.g. il and elle)")
    model, tokenizer = translator.model, translator.tokenizer
    config = decoding or DecodingConfig(beam_size=4)
    traces = [
        trace_translation(model, tokenizer, text, decoding=config, kinds=("encoder",)) for text in (first, second)
    ]
    words = [group_words(trace.source_labels) for trace in traces]
    if antecedents is None:
        antecedents = _antecedents(words[0], pronoun)
    if len(antecedents) != 2:
        raise ValueError(f"give two antecedents to compare, got {len(antecedents)}")
    shifts = _head_shifts(traces, words, pronoun, (antecedents[0], antecedents[1]))
    steps = tuple(_pronoun_step(model, tokenizer, trace, choices) for trace in traces)
    return Contrast(
        sentences=(first, second),
        translations=(traces[0].translation, traces[1].translation),
        pronoun=pronoun,
        antecedents=(antecedents[0], antecedents[1]),
        choices=tuple(choices),
        steps=(steps[0], steps[1]),
        heads=sorted(shifts, key=lambda h: (-abs(h.shift), h.layer, h.head)),
    )


def _antecedents(words: list[Word], pronoun: str) -> list[str]:
    """The first two words after a determiner before the pronoun: "the dog ... the soup ... it"."""
    texts = [word.text for word in words]
    at = find_word(words, pronoun)
    found = [
        texts[i]
        for i in range(1, at)
        if texts[i - 1].lower() in DETERMINERS and texts[i].isalpha() and texts[i].lower() not in DETERMINERS
    ]
    if len(found) < 2:
        raise ValueError(
            f"cannot tell the two antecedents of {pronoun!r}: {len(found)} noun(s) after a determiner before it "
            f"({', '.join(found) or 'none'}); name them (e.g. dog and soup)"
        )
    return found[:2]


def _head_shifts(
    traces: list[TranslationTrace], words: list[list[Word]], pronoun: str, antecedents: tuple[str, str]
) -> list[HeadShift]:
    rows = []  # per sentence: (layers, H, 2) attention from the pronoun to each antecedent
    for trace, sentence_words in zip(traces, words, strict=True):
        source = find_word(sentence_words, pronoun)
        targets = [find_word(sentence_words, antecedent) for antecedent in antecedents]
        layers = []
        for layer in range(trace.recorder.layers("encoder")):
            weights = trace.recorder.attention("encoder", layer).weights[0]  # (H, T, S)
            by_word = word_attention(weights.float(), sentence_words, sentence_words)  # (H, words, words)
            layers.append(by_word[:, source][:, targets])  # (H, 2)
        rows.append(torch.stack(layers))
    one, two = rows
    shift = (one[..., 0] - one[..., 1]) - (two[..., 0] - two[..., 1])  # (layers, H)
    return [
        HeadShift(
            layer,
            head,
            (float(one[layer, head, 0]), float(one[layer, head, 1])),
            (float(two[layer, head, 0]), float(two[layer, head, 1])),
            float(shift[layer, head]),
        )
        for layer in range(shift.shape[0])
        for head in range(shift.shape[1])
    ]


def _pronoun_step(
    model: Transformer, tokenizer: SubwordTokenizer, trace: TranslationTrace, choices: Sequence[str]
) -> PronounStep:
    """The step that writes the first word that is one of the choices, and each choice's probability there.

    A choice's probability is that of all its pieces, one after the other, written after the same
    French prefix (the chain rule: P(elle) = P(el | prefix) · P(##le | prefix, el)).
    """
    labels = trace.produced_labels
    wanted = {choice.lower() for choice in choices}
    index = written = None
    for word in group_words(labels):
        text = word.text.lstrip("'’").lower()  # "qu'il" is written qu ' il: the word after the apostrophe
        if text in wanted:
            index = next(p for p in word.pieces if labels[p].removeprefix("##").strip("'’"))
            written = text
            break
    if index is None:
        return PronounStep(None, None, {})
    prefix = trace.target_ids[1 : index + 1]  # the French pieces written before the pronoun
    joined = labels[index].startswith("##")  # written on to the word before ("qu'" + "il")
    probabilities = {choice: _word_probability(model, tokenizer, trace, prefix, choice, joined) for choice in choices}
    return PronounStep(index, written, probabilities)


def _word_probability(
    model: Transformer,
    tokenizer: SubwordTokenizer,
    trace: TranslationTrace,
    prefix: list[int],
    word: str,
    joined: bool,
) -> float:
    """The probability that the decoder writes ``word`` next after ``prefix``: the product over its pieces."""
    text = tokenizer.decode(prefix)
    ids = tokenizer.encode_target(text + ("" if joined else " ") + word) if text else tokenizer.encode_target(word)
    if ids[: len(prefix)] != prefix or len(ids) == len(prefix):
        # The word does not follow the prefix piece by piece: its single pieces' probabilities.
        pieces = _choice_ids(tokenizer, word)
        return float(_next_probabilities(model, trace, prefix)[pieces].sum()) if pieces else 0.0
    rest = ids[len(prefix) :]
    device = next(model.parameters()).device
    with torch.inference_mode():
        src = torch.tensor([trace.source_ids], device=device)
        tgt = torch.tensor([[trace.target_ids[0], *prefix, *rest[:-1]]], device=device)
        log_probs = model(src, tgt)[0, len(prefix) :].float().log_softmax(dim=-1)  # (len(rest), V)
    return float(torch.exp(log_probs[torch.arange(len(rest)), torch.tensor(rest)].sum()))


def _next_probabilities(model: Transformer, trace: TranslationTrace, prefix: list[int]) -> torch.Tensor:
    device = next(model.parameters()).device
    with torch.inference_mode():
        src = torch.tensor([trace.source_ids], device=device)
        tgt = torch.tensor([[trace.target_ids[0], *prefix]], device=device)
        return model(src, tgt)[0, -1].float().softmax(dim=-1)


def _choice_ids(tokenizer: SubwordTokenizer, choice: str) -> list[int]:
    """The vocabulary ids of ``choice`` as a word-start piece and as a continuation piece, where they exist."""
    ids = []
    for piece in (WORD_START + choice, choice):
        token_id = tokenizer.piece_id(piece)
        if tokenizer.pieces([token_id])[0] == piece:  # an unknown piece comes back as <unk>
            ids.append(token_id)
    return ids
