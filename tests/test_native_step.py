"""The decoding step in C: Transformer.decode's logits, the caches kept in step, and where it stands aside."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import pytest
import torch

from conftest import int8_reference, needs_kernels
from selfattention.config import ModelConfig
from selfattention.decoding import DecodingConfig, Translator, beam_search, greedy_search
from selfattention.decoding.translator import start_step
from selfattention.engine import SWITCH, decoder_settings, library, native_step
from selfattention.engine.packed import pack_linears
from selfattention.engine.quantize import with_precision
from selfattention.engine.variants import variants_for
from selfattention.model import Transformer, build_model
from selfattention.search import TorchStep

pytestmark = [needs_kernels, pytest.mark.usefixtures("fresh_engine")]


def model_of(seed: int = 0, **changes: object) -> Transformer:
    torch.manual_seed(seed)
    shape = dict(vocab_size=53, d_model=32, n_heads=4, d_ff=48, encoder_layers=2, decoder_layers=2, dropout=0.0)
    shape.update(changes)
    model = build_model(ModelConfig(**shape)).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # LayerNorm and biases away from their initial 1 and 0, so that a mix-up shows
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(torch.randn_like(parameter) * 0.3)
    return model


def sources(batch: int = 4, length: int = 7, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 53, (batch, length), generator=generator)
    src[1, length - 3 :] = 0  # padding: the source mask matters
    src[-1, 2:] = 0
    return src


VARIANTS = {
    "post-LN, relu, sinusoidal, tied": {},
    "pre-LN, gelu, learned positions": dict(norm="pre", activation="gelu", positional="learned"),
    "silu, halves, output bias, untied, unscaled": dict(
        activation="silu", positional="sinusoidal_halves", output_bias=True, tie_embeddings=False,
        scale_embedding=False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("groups", [1, 3])
def test_logits_match_transformer_decode_step_by_step(variant: str, groups: int) -> None:
    model = model_of(**VARIANTS[variant])  # type: ignore[arg-type]
    src = sources()
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        native = native_step.start(model, memory, mask, src.shape[0] * groups, 10)
        assert native is not None
        reference = TorchStep(model, memory, mask)
        generator = torch.Generator().manual_seed(2)
        live = src.shape[0]
        for step in range(7):
            tokens = torch.randint(0, 53, (live * groups, 1), generator=generator)
            ours, theirs = native(tokens), reference(tokens)
            assert ours.shape == theirs.shape == (live * groups, 53)
            torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-5)
            if step == 2:  # sentences 3 and 0 stay (in that order), their rows shuffled and repeated
                kept = torch.tensor([3, 0])
                rows = (kept[:, None] * groups + torch.arange(groups)).reshape(-1)
                rows = rows[torch.randint(0, rows.shape[0], rows.shape, generator=generator)]
                for step_ in (native, reference):
                    step_.keep_sources(kept)
                    step_.keep_targets(rows)
                live = 2


def test_searches_give_the_same_tokens_through_either_step() -> None:
    model = model_of(3, norm="pre")
    src = sources(6, 9, seed=4)
    assert isinstance(start_step(model, model.encode(src), model.source_mask(src), 6, 5), native_step.NativeStep)
    native = (
        greedy_search(model, src, 1, 2, start_step=start_step),
        beam_search(model, src, 1, 2, beam_size=3, start_step=start_step),
    )
    assert (greedy_search(model, src, 1, 2), beam_search(model, src, 1, 2, beam_size=3)) == native  # TorchStep


def test_a_search_runs_the_reference_step_unless_given_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is chosen where a translator starts a search, not inside the search."""
    model = model_of()
    src = sources()
    monkeypatch.setattr(native_step, "start", lambda *args: pytest.fail("the search chose the engine itself"))
    greedy_search(model, src, 1, 2)
    beam_search(model, src, 1, 2, beam_size=2)


def test_the_bundled_model_translates_the_same_through_either_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from selfattention.cli.common import resolve_model

    texts = [
        "I am good.",
        "A dog ate the food because it was hungry.",
        "Two men are playing soccer in a park.",
        "A little girl in a pink dress is climbing the stairs of a wooden house.",
    ]
    translator = Translator.load(resolve_model(None))
    assert native_step.decoder_for(translator.model) is not None
    outputs = {beam: translator.translate(texts, DecodingConfig(beam_size=beam)) for beam in (1, 4)}
    monkeypatch.setattr(native_step, "start", lambda *args: None)
    assert {beam: translator.translate(texts, DecodingConfig(beam_size=beam)) for beam in (1, 4)} == outputs


def test_decoding_workers_inherit_the_packed_weights_instead_of_packing_their_own() -> None:
    from selfattention.cli.common import resolve_model

    translator = Translator.load(resolve_model(None))
    assert translator.model not in native_step._decoders  # nothing packed at load
    texts = ["I am good.", "Two men are playing soccer in a park.", "A dog ate the food because it was hungry."]
    alone = translator.translate(texts, DecodingConfig(beam_size=1, batch_size=1))
    native_step._decoders.pop(translator.model)
    translator.start_workers(2)
    try:
        packed = native_step._decoders.get(translator.model)
        assert packed is not None  # packed in this process, before the fork: the workers share its pages
        assert translator.translate(texts, DecodingConfig(beam_size=1, batch_size=1)) == alone
        assert native_step._decoders[translator.model] is packed
    finally:
        translator.stop_workers()


def test_the_packed_weights_follow_a_change_of_the_model() -> None:
    model = model_of()
    first = native_step.decoder_for(model)
    assert first is not None and native_step.decoder_for(model) is first  # packed once
    with torch.no_grad():
        model.decoder.layers[0].feed_forward.up_proj.weight.mul_(2.0)
    second = native_step.decoder_for(model)
    assert second is not None and second is not first
    src = sources()
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        tokens = torch.full((4, 1), 1)
        ours = native_step.start(model, memory, mask, 4, 3)(tokens)  # type: ignore[misc]
        torch.testing.assert_close(ours, TorchStep(model, memory, mask)(tokens), atol=2e-5, rtol=1e-5)


def test_it_stands_aside_where_it_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_of()
    src = sources()
    memory, mask = model.encode(src).detach(), model.source_mask(src)
    assert native_step.start(model, memory, mask, 4, 5) is not None
    assert native_step.start(with_precision(model, "int8"), memory, mask, 4, 5) is not None  # int8 layers too
    model.decoder.layers[0].feed_forward.activation = torch.tanh  # an activation the C step does not know
    assert native_step.start(model, memory, mask, 4, 5) is None
    model.decoder.layers[0].feed_forward.activation = torch.nn.functional.relu
    assert native_step.start(model.train(), memory, mask, 4, 5) is None  # dropout is on
    model.eval()
    assert native_step.start(model, memory.double(), mask, 4, 5) is None
    monkeypatch.setenv(SWITCH, "0")
    library.forget()
    assert not native_step.available()
    assert native_step.start(model, memory, mask, 4, 5) is None
    assert isinstance(start_step(model, memory, mask, 4, 5), TorchStep)


class RowQuantizedLinear(torch.nn.Module):
    """What native_step.c computes for an int8 weight, in PyTorch: rows quantised to [-127, 127], exact sums."""

    def __init__(self, weights: native_step.Weights) -> None:
        super().__init__()
        assert weights.scales is not None
        self.values, self.scales, self.bias = weights.values, weights.scales, weights.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int8_reference(x, self.values, self.scales, self.bias).to(torch.float32)


@pytest.mark.parametrize("shape", [(5, 37, 45), (17, 64, 96), (8, 3, 1)])
def test_int8_products_are_exact_integer_sums_and_float32_ones_match_pytorch(shape: tuple[int, int, int]) -> None:
    rows, k, n = shape  # k not a multiple of 4, n not of 32, rows not of 8
    generator = torch.Generator().manual_seed(k)
    decoder = native_step.decoder_for(model_of())
    assert decoder is not None
    x = torch.randn(rows, k, generator=generator) * 3
    x[0] = 0.0  # a zero row has scale 1, not a division by zero
    values = torch.randint(-128, 128, (n, k), dtype=torch.int8, generator=generator)
    int8 = native_step.Weights(
        values, torch.rand(n, generator=generator) / 50 + 1e-3, torch.randn(n, generator=generator)
    )
    ours = decoder.linear(x, decoder.pack(int8), n)
    torch.testing.assert_close(ours, RowQuantizedLinear(int8)(x), atol=1e-5, rtol=1e-5)
    assert torch.equal(ours[0], int8.bias)
    weight = torch.randn(n, k, generator=generator)
    float32 = native_step.Weights(weight, None, None)
    torch.testing.assert_close(decoder.linear(x, decoder.pack(float32), n), x @ weight.T, atol=1e-5, rtol=1e-5)


def runnable_variants() -> list[library.Library]:
    """Every build of the kernels this processor runs (the best, the generic one, and those between)."""
    variants = [library.load(variant.name) for variant in variants_for(platform.machine())]
    return [variant for variant in variants if variant is not None]


def test_int8_products_are_the_same_in_every_build_the_processor_runs() -> None:
    """Exact integer sums: VNNI's vpdpbusd where the build has it, plain C elsewhere, the same numbers."""
    model = model_of()
    builds = runnable_variants()
    assert builds[-1].variant.name == "generic" and len(builds) >= 1
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(11, 70, generator=generator)
    int8 = native_step.Weights(
        torch.randint(-128, 128, (70, 70), dtype=torch.int8, generator=generator), torch.rand(70) / 10, None
    )
    results = []
    for built in builds:
        decoder = native_step.NativeDecoder(model, built.cdll)
        results.append(decoder.linear(x, decoder.pack(int8), 70))
    assert all(torch.equal(result, results[0]) for result in results)


def test_every_build_the_processor_runs_gives_transformer_decodes_logits() -> None:
    model = model_of(2, norm="pre", activation="gelu")
    src = sources()
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        tokens = torch.arange(4)[:, None] + 3
        expected = TorchStep(model, memory, mask)(tokens)
        for built in runnable_variants():
            step = native_step.NativeStep(native_step.NativeDecoder(model, built.cdll), memory, mask, 4, 3)
            torch.testing.assert_close(step(tokens), expected, atol=2e-5, rtol=1e-5, msg=built.variant.name)


def test_an_int8_models_steps_match_its_layers_computed_in_pytorch() -> None:
    import copy

    model = model_of(1, norm="pre")
    quantized = with_precision(model, "int8")
    reference = copy.deepcopy(model)  # the int8 weights, each product as the C step computes it
    for name, module in list(quantized.named_modules()):
        if ".cross_attn.k_proj" in name or ".cross_attn.v_proj" in name or not name.startswith(("decoder", "output")):
            continue  # the source's keys and values, and the encoder, are the same Int8Linear layers in both
        weights = native_step._weight(module)
        if weights is not None and weights.scales is not None:
            parent, _, child = name.rpartition(".")
            setattr(reference.get_submodule(parent) if parent else reference, child, RowQuantizedLinear(weights))
    reference.encoder, reference.src_embed = quantized.encoder, quantized.src_embed
    for layer, theirs in zip(reference.decoder.layers, quantized.decoder.layers, strict=True):
        layer.cross_attn.k_proj, layer.cross_attn.v_proj = theirs.cross_attn.k_proj, theirs.cross_attn.v_proj
    src = sources()
    with torch.no_grad():
        memory, mask = quantized.encode(src), quantized.source_mask(src)
        native = native_step.start(quantized, memory, mask, 4, 6)
        assert native is not None
        step = TorchStep(reference, memory, mask)
        for position in range(5):
            tokens = torch.full((4, 1), 3 + position)
            torch.testing.assert_close(native(tokens), step(tokens), atol=1e-4, rtol=1e-4)
        float32 = TorchStep(model, memory, mask)
        for position in range(5):
            float32(torch.full((4, 1), 3 + position))
        assert (native(torch.full((4, 1), 9)) - float32(torch.full((4, 1), 9))).abs().max() < 0.1  # int8 is close


def test_packed_linear_layers_are_read_through() -> None:
    model = model_of()
    reference = model_of()
    if pack_linears(model) == 0:
        pytest.skip("oneDNN packing is not available here")
    src = sources()
    with torch.no_grad():
        memory, mask = reference.encode(src), reference.source_mask(src)
        tokens = torch.arange(4)[:, None] + 3
        ours = native_step.start(model, memory, mask, 4, 2)(tokens)  # type: ignore[misc]
        torch.testing.assert_close(ours, TorchStep(reference, memory, mask)(tokens), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "index",
    [
        [1, 2, 3, 0, 4, 5, 6, 7],  # a cycle
        [0, 0, 0, 5, 5, 5],  # repeats: hypotheses sharing a prefix, some rows gone
        [7, 6, 5, 4, 3, 2, 1, 0],  # a reversal
        [2, 2, 7, 7],  # fewer rows than before, read from rows that are not kept
        [0, 1, 2, 3, 4, 5, 6, 7],  # nothing moves
    ],
)
def test_kept_rows_go_on_from_their_old_rows_history(index: list[int]) -> None:
    """Row i after ``keep_targets(index)`` decodes as the old row ``index[i]`` would, in both steps.

    One source per row (groups of 1), so the sources follow the same index; a second reorder then
    reads histories through two generations of parents.
    """
    model = model_of()
    src = sources(batch=8, seed=3)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        native = native_step.start(model, memory, mask, 8, 8)
        assert native is not None
        reference = TorchStep(model, memory, mask)
        rows = 8
        for again in (torch.tensor(index), torch.tensor(index[::-1][: max(len(index) - 1, 1)])):
            for _ in range(3):
                tokens = torch.randint(3, 53, (rows, 1), generator=generator)
                torch.testing.assert_close(native(tokens), reference(tokens), atol=2e-5, rtol=1e-5)
            keep = again % rows
            for step in (native, reference):
                step.keep_sources(keep)
                step.keep_targets(keep)
            rows = keep.shape[0]
        tokens = torch.randint(3, 53, (rows, 1), generator=generator)
        torch.testing.assert_close(native(tokens), reference(tokens), atol=2e-5, rtol=1e-5)


def test_keeping_rows_moves_no_cache_row() -> None:
    model = model_of()
    src = sources(batch=2)
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        step = native_step.start(model, memory, mask, 8, 6)
        assert step is not None
        for _ in range(3):
            step(torch.full((8, 1), 3))
        before = step.self_kv[:, :, :, :, :3].clone()
        step.keep_targets(torch.tensor([1, 1, 0, 0, 5, 5, 4, 4]))
        assert step.history[:, :3].tolist() == [[r] * 3 for r in (1, 1, 0, 0, 5, 5, 4, 4)]
        step(torch.full((8, 1), 3))
        assert torch.equal(step.self_kv[:, :, :, :, :3], before)  # the first three positions untouched
        assert step.history[:, 3].tolist() == list(range(8))  # the new position: each row's own
        step.keep_targets(torch.tensor([], dtype=torch.int64))  # nothing kept
        assert step.history.shape == (0, 6)


def test_bad_steps_are_refused_with_what_is_wrong() -> None:
    model = model_of(positional="learned", max_positions=4)
    src = sources(length=4)
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        step = native_step.start(model, memory, mask, 4, 6)
        assert step is not None
        with pytest.raises(ValueError, match=r"token ids must lie in \[0, 53\)"):
            step(torch.full((4, 1), 53))
        with pytest.raises(ValueError, match="5 rows do not match 4 sources"):
            step(torch.full((5, 1), 3))
        with pytest.raises(IndexError, match="cache rows must lie in"):
            step.keep_targets(torch.tensor([0, 9, 1, 2]))
        with pytest.raises(IndexError, match="at most 4 cache rows can be kept"):
            step.keep_targets(torch.tensor([0, 1, 2, 3, 3]))
        with pytest.raises(IndexError, match="as a 1-D index"):
            step.keep_targets(torch.tensor([[0, 1], [2, 3]]))
        for _ in range(4):
            step(torch.full((4, 1), 3))
        with pytest.raises(ValueError, match="longer than the 4 learned positions"):
            step(torch.full((4, 1), 3))
    with torch.no_grad():  # the PyTorch step says the same
        reference = TorchStep(model, memory, mask)
        for _ in range(4):
            reference(torch.full((4, 1), 3))
        with pytest.raises(ValueError, match="longer than the 4 learned positions"):
            reference(torch.full((4, 1), 3))


def test_an_empty_batch_has_no_native_step() -> None:
    model = model_of()
    memory = torch.zeros(0, 7, 32)
    assert native_step.start(model, memory, None, 0, 3) is None


def test_without_the_library_the_pytorch_step_runs_and_one_warning_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(library, "DIRECTORY", tmp_path)  # no library built there
    model = model_of()
    src = sources()
    with caplog.at_level(logging.WARNING, logger=library.__name__):
        assert not native_step.available()
        for _ in range(2):
            step = start_step(model, model.encode(src).detach(), model.source_mask(src), 4, 3)
            assert isinstance(step, TorchStep)
    assert len(caplog.records) == 1  # once per process, not per search
    assert "the C kernels are not built" in caplog.text and "decoding runs through PyTorch" in caplog.text
    assert "not built" in str(library.why_not())


SETTINGS_THAT_DIFFER = {
    "activation": lambda layer: setattr(layer.feed_forward, "activation", torch.nn.functional.gelu),
    "LayerNorm epsilon": lambda layer: [setattr(norm, "eps", 1e-3) for norm in (
        layer.self_attn_norm, layer.cross_attn_norm, layer.feed_forward_norm)],
    "norm placement": lambda layer: setattr(layer, "norm_first", True),
}  # fmt: skip


@pytest.mark.parametrize("setting", list(SETTINGS_THAT_DIFFER))
def test_a_second_decoder_layer_that_differs_runs_the_reference_step(
    setting: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The C step takes one activation, epsilon and norm placement for all layers: every layer is checked."""
    model = model_of(4, decoder_layers=3)
    SETTINGS_THAT_DIFFER[setting](model.decoder.layers[1])
    src = sources(6, 9, seed=4)
    reason = decoder_settings.settings(model)
    assert isinstance(reason, str) and reason.startswith(f"decoder layer 1's {setting} (")
    with caplog.at_level(logging.WARNING, logger=native_step.__name__):
        memory, mask = model.encode(src).detach(), model.source_mask(src)
        assert native_step.start(model, memory, mask, 6, 5) is None
        assert isinstance(start_step(model, memory, mask, 6, 5), TorchStep)
        searched = (
            greedy_search(model, src, 1, 2, start_step=start_step),
            beam_search(model, src, 1, 2, beam_size=3, start_step=start_step),
        )
    assert (greedy_search(model, src, 1, 2), beam_search(model, src, 1, 2, beam_size=3)) == searched
    assert len(caplog.records) == 1 and reason in caplog.text  # once per model
    SETTINGS_THAT_DIFFER[setting](model.decoder.layers[0])  # every layer alike again (but the third)
    SETTINGS_THAT_DIFFER[setting](model.decoder.layers[2])
    assert isinstance(decoder_settings.settings(model), decoder_settings.Settings)
    assert native_step.start(model, memory, mask, 6, 5) is not None


def test_a_final_norm_whose_epsilon_differs_runs_the_reference_step() -> None:
    model = model_of(norm="pre")
    assert model.decoder.final_norm is not None
    model.decoder.final_norm.eps = 1e-3
    assert "final LayerNorm's epsilon" in str(decoder_settings.settings(model))
    src = sources()
    assert native_step.start(model, model.encode(src).detach(), model.source_mask(src), 4, 5) is None


def test_a_change_of_a_layers_setting_after_packing_is_a_new_packing() -> None:
    model = model_of()
    first = native_step.decoder_for(model)
    for layer in model.decoder.layers:
        layer.feed_forward.activation = torch.nn.functional.silu
    second = native_step.decoder_for(model)
    assert first is not None and second is not None and second is not first
    src = sources()
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        tokens = torch.full((4, 1), 5)
        ours = native_step.start(model, memory, mask, 4, 3)(tokens)  # type: ignore[misc]
        torch.testing.assert_close(ours, TorchStep(model, memory, mask)(tokens), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(128, 8000), (5, 53), (3, 21)])
@pytest.mark.parametrize("k", [1, 8, 16])
def test_the_best_tokens_in_c_are_pytorchs_log_softmax_and_top_k(shape: tuple[int, int], k: int) -> None:
    generator = torch.Generator().manual_seed(shape[1] + k)
    logits = torch.randn(shape, generator=generator) * 4
    logits[0, 7] = 50.0  # a banned token is the likeliest: it still counts in the sum, and is never chosen
    banned, eos = [0, 7], 2
    expected = best_tokens_in_pytorch(logits, k, banned, eos)
    values, indices, eos_scores = native_step.best_tokens(logits.clone(), k, banned, eos)
    torch.testing.assert_close(values, expected[0], atol=2e-6, rtol=1e-6)
    assert torch.equal(indices, expected[1])
    torch.testing.assert_close(eos_scores, expected[2], atol=2e-6, rtol=1e-6)
    assert not set(indices.reshape(-1).tolist()) & set(banned)


def best_tokens_in_pytorch(logits: torch.Tensor, k: int, banned: list[int], eos: int) -> tuple[torch.Tensor, ...]:
    from selfattention.search.steps import best_tokens

    return best_tokens(logits.clone(), k, banned, eos)


def test_the_best_tokens_in_c_break_ties_toward_the_lower_id_and_survive_extreme_rows() -> None:
    logits = torch.zeros(4, 40)
    logits[1, [30, 5, 17]] = 3.0  # a three-way tie at the top
    logits[2] = -torch.inf  # a row that allows nothing
    logits[3, :] = -1e30
    logits[3, 39] = 80.0  # exp overflows without the max subtracted
    values, indices, eos_scores = native_step.best_tokens(logits.clone(), 4, [0], 1)
    assert indices[0].tolist() == [1, 2, 3, 4]  # all equal: the lowest ids not banned
    assert indices[1, :3].tolist() == [5, 17, 30] and indices[1, 3] == 1
    assert torch.equal(values[2], torch.full((4,), -torch.inf)) and eos_scores[2] == -torch.inf
    assert indices[3, 0] == 39 and abs(float(values[3, 0])) < 1e-6 and float(eos_scores[3]) < -1e29
    expected = torch.log_softmax(logits[:2], dim=-1)
    torch.testing.assert_close(values[:2], expected.gather(1, indices[:2]))
    assert not torch.isnan(values).any() and not torch.isnan(eos_scores).any()


def test_a_best_token_search_that_cannot_be_made_is_refused_before_the_step() -> None:
    model = model_of()
    src = sources()
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        native = native_step.start(model, memory, mask, src.shape[0], 4)
        assert native is not None
        tokens = torch.ones(src.shape[0], 1, dtype=torch.int64)
        for k, banned, eos, problem in [
            (65, [0], 2, "64 at most"),
            (52, [0, 1], 2, r"\[1, 51\]"),
            (0, [0], 2, "k must lie"),
            (4, [53], 2, "ids must lie"),
            (4, [0], -1, "ids must lie"),
        ]:
            with pytest.raises(ValueError, match=problem):
                native.best_tokens(tokens, k, banned, eos)
        assert native.position == 0  # nothing was computed
        values, indices, _ = native.best_tokens(tokens, 4, [0], 2)
        assert native.position == 1 and values.shape == indices.shape == (src.shape[0], 4)
    with pytest.raises(ValueError, match="float32"):
        native_step.best_tokens(torch.zeros(2, 9, dtype=torch.float64), 2, [], 1)
