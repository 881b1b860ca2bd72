"""Greedy and beam search on small random models: the cache, batching, limits, scores, the Translator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from selfattention import ModelConfig, Transformer, build_model
from selfattention.data import BOS_ID, EOS_ID, PAD_ID, Tokenizer, collate, load_corpus, make_example
from selfattention.decoding import DecodingConfig, SearchLimits, Translator, beam_search, greedy_search
from selfattention.decoding.translator import start_step
from selfattention.engine import top_k
from selfattention.search import StartStep, torch_step

VOCAB = 40
SPECIAL = {PAD_ID, BOS_ID, EOS_ID}
SEEDS = [0, 4, 7]  # random models whose outputs mix early ends and the length limit


def random_model(seed: int, vocab_size: int = VOCAB) -> Transformer:
    """An untrained model; its EOS logit is scaled up so that some outputs stop early and some do not."""
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=vocab_size,
        d_model=32,
        n_heads=2,
        d_ff=64,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.1,  # eval mode must switch it off
        tie_embeddings=False,
    )
    model = build_model(config)
    with torch.no_grad():
        model.output_proj.weight[EOS_ID] *= 3
    return model.eval()


def random_sources(seed: int, count: int = 8, vocab_size: int = VOCAB) -> list[list[int]]:
    """Token ids of ``count`` sentences of different lengths (no markers)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    lengths = torch.randint(1, 12, (count,), generator=generator).tolist()
    return [torch.randint(3, vocab_size, (n,), generator=generator).tolist() for n in lengths]


def padded(sources: list[list[int]]) -> torch.Tensor:
    """``(B, S)`` source ids, each ending with EOS, right-padded."""
    return collate([make_example(s, []) for s in sources]).src


def limits_of(src: torch.Tensor, limits: SearchLimits) -> list[int]:
    return limits.for_sources(src, PAD_ID).tolist()


@torch.no_grad()
def reference_greedy(model: Transformer, src: torch.Tensor, limits: SearchLimits) -> list[list[int]]:
    """Greedy search without the cache: the whole prefix goes through the decoder at every step."""
    memory, mask = model.encode(src), model.source_mask(src)
    results = []
    for b, limit in enumerate(limits_of(src, limits)):
        prefix = [BOS_ID]
        for step in range(limit):
            logits = model.decode(torch.tensor([prefix]), memory[b : b + 1], mask[b : b + 1])[0, -1]
            logits[[BOS_ID, PAD_ID]] = -torch.inf
            token = EOS_ID if step + 1 >= limit else int(logits.argmax())
            if token == EOS_ID:
                break
            prefix.append(token)
        results.append(prefix[1:])
    return results


@torch.no_grad()
def normalised_score(model: Transformer, source: list[int], output: list[int]) -> float:
    """log P(output, EOS | source) / (len(output) + 1), from one teacher-forced pass."""
    src = padded([source])
    tgt_in = torch.tensor([[BOS_ID, *output]])
    tgt_out = torch.tensor([[*output, EOS_ID]])
    log_probs = torch.log_softmax(model(src, tgt_in).float(), dim=-1)
    return float(log_probs.gather(-1, tgt_out[..., None]).sum()) / (len(output) + 1)


# -- greedy -------------------------------------------------------------------------------------


STEPS: dict[str, tuple[StartStep, int | None]] = {
    "PyTorch step": (torch_step, None),
    "translator's step": (start_step, top_k.CHUNK),  # the engine's C step, where there is a compiler
    "translator's step, chunks of 3": (start_step, 3),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("step", list(STEPS))
def test_greedy_with_the_cache_equals_greedy_without(seed: int, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through either step; chunks of 3 make the C step's ``top_k`` skip chunks of the 40-token vocabulary."""
    start, chunk = STEPS[step]
    if chunk is not None:
        monkeypatch.setattr(top_k, "CHUNK", chunk)
    model = random_model(seed)
    src = padded(random_sources(seed))
    limits = SearchLimits()
    outputs = greedy_search(model, src, BOS_ID, EOS_ID, limits, start_step=start)
    assert outputs == reference_greedy(model, src, limits)
    # the sources must exercise both ways of ending: EOS chosen, and the length limit
    lengths = [len(o) for o in outputs]
    maxima = [limit - 1 for limit in limits_of(src, limits)]
    assert any(n < m for n, m in zip(lengths, maxima, strict=True))
    assert any(n == m for n, m in zip(lengths, maxima, strict=True))


@pytest.mark.parametrize("seed", SEEDS)
def test_beam_of_one_is_greedy(seed: int) -> None:
    model = random_model(seed)
    src = padded(random_sources(seed, count=10))
    assert beam_search(model, src, BOS_ID, EOS_ID, beam_size=1) == greedy_search(model, src, BOS_ID, EOS_ID)


def test_beam_size_below_one_is_refused() -> None:
    model = random_model(0)
    with pytest.raises(ValueError, match="beam size"):
        beam_search(model, padded([[5, 6]]), BOS_ID, EOS_ID, beam_size=0)


# -- batching -----------------------------------------------------------------------------------

Search = Callable[[Transformer, torch.Tensor], list[list[int]]]
SEARCHES: dict[str, Search] = {
    "greedy": lambda model, src: greedy_search(model, src, BOS_ID, EOS_ID),
    "beam4": lambda model, src: beam_search(model, src, BOS_ID, EOS_ID, beam_size=4),
    "greedy, translator's step": lambda model, src: greedy_search(model, src, BOS_ID, EOS_ID, start_step=start_step),
    "beam4, translator's step": lambda model, src: beam_search(
        model, src, BOS_ID, EOS_ID, beam_size=4, start_step=start_step
    ),
}


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("seed", SEEDS)
def test_a_translation_does_not_depend_on_its_batch(seed: int, search: str) -> None:
    run = SEARCHES[search]
    model = random_model(seed)
    generator = torch.Generator().manual_seed(seed)
    sentence = torch.randint(3, VOCAB, (6,), generator=generator).tolist()
    longer = [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in (11, 15, 9)]
    shorter = [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in (1, 3, 2)]
    [alone] = run(model, padded([sentence]))
    batches = [
        ([sentence, longer[0]], 0),
        ([longer[1], sentence], 1),
        ([shorter[0], sentence, longer[2]], 1),
        ([*shorter, sentence], 3),
        ([longer[0], shorter[1], longer[1], sentence, shorter[0], longer[2], shorter[2]], 3),
        ([sentence, sentence, longer[0]], 1),
    ]
    for batch, position in batches:
        outputs = run(model, padded(batch))
        assert len(outputs) == len(batch)
        assert outputs[position] == alone, f"batch of {len(batch)}: {outputs[position]} != {alone}"
        # and every mate is also translated as if alone
        for source, output in zip(batch, outputs, strict=True):
            assert output == run(model, padded([source]))[0]


# -- beam search finds at least as good a translation --------------------------------------------


@torch.no_grad()
def reference_beam(
    model: Transformer, src: torch.Tensor, beam_size: int, length_penalty: float, limits: SearchLimits
) -> list[list[int]]:
    """Beam search one sentence at a time, without the cache, over every (hypothesis, token) pair."""
    memory, mask = model.encode(src), model.source_mask(src)
    results = []
    for b, limit in enumerate(limits_of(src, limits)):
        beams: list[tuple[float, list[int]]] = [(0.0, [])]  # (log-probability, tokens), best first
        finished: list[tuple[float, list[int]]] = []
        for step in range(limit):
            candidates = []
            for score, tokens in beams:
                prefix = torch.tensor([[BOS_ID, *tokens]])
                log_probs = torch.log_softmax(model.decode(prefix, memory[b : b + 1], mask[b : b + 1])[0, -1], -1)
                for token, value in enumerate(log_probs.tolist()):
                    allowed = token == EOS_ID if step + 1 >= limit else token not in (BOS_ID, PAD_ID)
                    if allowed:
                        candidates.append((score + value, tokens, token))
            candidates.sort(key=lambda c: c[0], reverse=True)
            best = candidates[: 2 * beam_size]
            for rank, (score, tokens, token) in enumerate(best):
                if token == EOS_ID and rank < beam_size:
                    finished.append((score / (len(tokens) + 1) ** length_penalty, tokens))
            beams = [(score, [*tokens, token]) for score, tokens, token in best if token != EOS_ID][:beam_size]
            if len(finished) >= beam_size:
                break
        results.append(max(finished, key=lambda f: f[0])[1])
    return results


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("limits", [SearchLimits(), SearchLimits(0.5, 2)])
def test_beam_search_is_the_plain_search_batched(seed: int, limits: SearchLimits) -> None:
    """Same outputs as trying every token after every hypothesis, one sentence at a time (float64)."""
    model = random_model(seed).double()
    src = padded(random_sources(seed, count=6))
    for beam_size, length_penalty in ((3, 1.0), (4, 0.6)):
        expected = reference_beam(model, src, beam_size, length_penalty, limits)
        assert beam_search(model, src, BOS_ID, EOS_ID, beam_size, length_penalty, limits) == expected


def test_beam_wider_than_half_the_vocabulary() -> None:
    """2K candidates per hypothesis from a 6-token vocabulary (3 of them special) at beam 4."""
    model = random_model(2, vocab_size=6).double()
    src = padded([[3, 4, 5], [4], [5, 3]])
    limits = SearchLimits(1.0, 3)
    assert beam_search(model, src, BOS_ID, EOS_ID, 4, 1.0, limits) == reference_beam(model, src, 4, 1.0, limits)


@pytest.mark.parametrize("seed", SEEDS)
def test_beam_scores_at_least_as_well_as_greedy(seed: int) -> None:
    model = random_model(seed)
    sources = random_sources(seed, count=10)
    src = padded(sources)
    greedy = greedy_search(model, src, BOS_ID, EOS_ID)
    beam = beam_search(model, src, BOS_ID, EOS_ID, beam_size=4, length_penalty=1.0)
    better = 0
    for source, g, b in zip(sources, greedy, beam, strict=True):
        greedy_score = normalised_score(model, source, g)
        beam_score = normalised_score(model, source, b)
        assert beam_score >= greedy_score - 1e-4, f"beam {b} ({beam_score}) worse than greedy {g} ({greedy_score})"
        better += beam_score > greedy_score + 1e-4
    assert better > 0 or beam == greedy


# -- limits and special tokens ------------------------------------------------------------------


def test_outputs_hold_no_special_ids_and_respect_the_limits() -> None:
    limit_cases = [
        SearchLimits(),
        SearchLimits(0.5, 2),
        SearchLimits(1.0, 1),
        SearchLimits(0.0, 1),
        SearchLimits(2.0, 5),
    ]
    for seed in SEEDS:
        model = random_model(seed)
        src = padded(random_sources(seed, count=10))
        for limits in limit_cases:
            maxima = limits_of(src, limits)
            for outputs in (
                greedy_search(model, src, BOS_ID, EOS_ID, limits),
                beam_search(model, src, BOS_ID, EOS_ID, 3, 1.0, limits),
            ):
                for output, maximum in zip(outputs, maxima, strict=True):
                    assert len(output) <= maximum - 1
                    assert not SPECIAL & set(output)


def biased(model: Transformer, monkeypatch: pytest.MonkeyPatch) -> Transformer:
    """The model, except that it never wants to stop and loves BOS and PAD."""
    real_decode = model.decode
    bias = torch.zeros(model.output_proj.out_features)
    bias[EOS_ID] = -1e4
    bias[BOS_ID] = bias[PAD_ID] = 1e4

    def decode(*args: object, **kwargs: object) -> torch.Tensor:
        return real_decode(*args, **kwargs) + bias  # type: ignore[arg-type]

    monkeypatch.setattr(model, "decode", decode)
    return model


@pytest.mark.parametrize(
    "limits", [SearchLimits(), SearchLimits(0.5, 2), SearchLimits(0.0, 1), SearchLimits(1.5, 10, hard_limit=4)]
)
def test_a_model_that_never_stops_is_cut_at_the_limit(limits: SearchLimits, monkeypatch: pytest.MonkeyPatch) -> None:
    model = biased(random_model(1), monkeypatch)
    src = padded(random_sources(1, count=6))
    lengths = (src != PAD_ID).sum(dim=1).tolist()
    expected = [min(int(limits.max_len_a * n) + limits.max_len_b, limits.hard_limit) - 1 for n in lengths]
    for outputs in (
        greedy_search(model, src, BOS_ID, EOS_ID, limits),
        beam_search(model, src, BOS_ID, EOS_ID, 4, 1.0, limits),
        beam_search(model, src, BOS_ID, EOS_ID, 1, 1.0, limits),
    ):
        assert [len(o) for o in outputs] == expected
        for output in outputs:
            assert not SPECIAL & set(output)


# -- the Translator ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator(tiny_corpus: Path) -> Translator:
    pairs = load_corpus("multi30k", "train", tiny_corpus)
    tokenizer = Tokenizer.train([text for pair in pairs for text in pair], 120)
    return Translator(random_model(0, vocab_size=tokenizer.vocab_size), tokenizer)


TEXTS = [
    "The red dog runs in the park.",
    "",
    "The small bird sleeps.",
    "   ",
    "The big white horse jumps on the beach near the house.",
    "\t",
    "The cat eats.",
    "  The green boy swims.  ",
    "dog",
]


@pytest.mark.parametrize("beam", [1, 3])
def test_translator_keeps_the_order_and_matches_translate_ids(translator: Translator, beam: int) -> None:
    config = DecodingConfig(beam_size=beam, batch_size=2)
    done: list[int] = []
    outputs = translator.translate(TEXTS, config, progress=done.append)
    assert len(outputs) == len(TEXTS)
    assert sum(done) == len(TEXTS)  # empty inputs count as done, so a progress bar reaches its total
    tokenizer = translator.tokenizer
    for text, output in zip(TEXTS, outputs, strict=True):
        if not text.strip():
            assert output == ""
            continue
        [ids] = translator.translate_ids([tokenizer.encode(text.strip())], config)
        assert output == tokenizer.decode(ids)
    real = [o for t, o in zip(TEXTS, outputs, strict=True) if t.strip()]
    assert len(set(real)) > 1, "the test needs distinct translations to check the order"
    # another order of the same texts gives the same translations, in that order
    order = [8, 3, 0, 6, 1, 4, 7, 2, 5]
    assert translator.translate([TEXTS[i] for i in order], config) == [outputs[i] for i in order]
    # and the batch size changes nothing
    assert translator.translate(TEXTS, DecodingConfig(beam_size=beam, batch_size=32)) == outputs
    assert translator.translate(TEXTS, DecodingConfig(beam_size=beam, batch_size=1)) == outputs


def test_translator_with_nothing_to_translate(translator: Translator) -> None:
    assert translator.translate([]) == []
    assert translator.translate(["", "  ", "\n"]) == ["", "", ""]
