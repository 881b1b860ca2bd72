# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Self-attention, step by step, on a real trained model
#
# This walkthrough follows the two texts the project was built from, in their order: static
# embeddings, dot products, softmax, queries/keys/values, the matrix form, multi-head attention,
# the encoder–decoder, "it" → "dog", "Apple phones" vs "apple juice", and the O(n²) cost. Every
# number and picture below is computed live by `selfattention`'s own API on the bundled
# English→French model (set `SELFATTENTION_MODEL` to use another). The test suite runs this file,
# so it never goes stale. Open it as a notebook with `jupytext --to ipynb docs/walkthrough.py`.

# %%
import math
import os
import time
from pathlib import Path

import torch

from selfattention.attention import explicit_attention, scaled_dot_product_attention
from selfattention.cli.common import resolve_model
from selfattention.decoding import DecodingConfig, Translator
from selfattention.inspection import explain_head, render_explanation, toy_attention, trace_translation
from selfattention.inspection.context import compare_contexts
from selfattention.inspection.contrast import contrast
from selfattention.inspection.heads import rank_heads
from selfattention.inspection.interactive import attention_page
from selfattention.inspection.plots import grid, line_view, save_figure
from selfattention.inspection.toy import TOY_TOKENS
from selfattention.inspection.watch import watch_translation

OUT = Path(os.environ.get("WALKTHROUGH_OUT", "walkthrough-pictures"))
OUT.mkdir(exist_ok=True)
translator = Translator.load(resolve_model(os.environ.get("SELFATTENTION_MODEL")))
model, tokenizer = translator.model, translator.tokenizer
config = model.config
print(
    f"d_model {config.d_model}, {config.n_heads} heads of d_k {config.head_dim}, "
    f"{config.encoder_layers} encoder and {config.decoder_layers} decoder layers, {config.vocab_size} subwords"
)

# %% [markdown]
# ## 1. Static embeddings
#
# A word's embedding is one row of a learned matrix: the same vector whatever the sentence.
# "apple" starts from the same place in "I love apple juice" and in "apple pie".

# %%
piece = tokenizer.encode("apple")
embedding = model.src_embed.token.weight[piece[0]]
print(tokenizer.pieces(piece), embedding.shape, embedding[:5])

# %% [markdown]
# ## 2–3. Dot products and softmax: the seed's tiny example
#
# "love Apple phones" with 2-dimensional vectors: the raw score matrix Q·Kᵀ, its division by
# sqrt(2), and the row-wise softmax. Apple's row gives about 0.25 / 0.50 / 0.25.

# %%
toy = toy_attention()
print(toy.scores[0, 0])
print(toy.weights[0, 0])
assert [round(w, 2) for w in toy.weights[0, 0, 1].tolist()] == [0.25, 0.5, 0.25]
print(render_explanation(explain_head(toy, 0, TOY_TOKENS, has_bias=False)))

# %% [markdown]
# ## 4–5. Queries, keys, values and the matrix form, on "I am good"
#
# Q = X·W_Q, K = X·W_K, V = X·W_V with learned matrices; then Q·Kᵀ, ÷ sqrt(d_k), softmax, and
# Z = weights·V. Here for the first encoder layer's first head of the trained model.

# %%
trace = trace_translation(model, tokenizer, "I am good.")
print("Translation:", trace.translation)
step = trace.recorder.attention("encoder", 0)
print(render_explanation(explain_head(step, 0, *trace.labels("encoder"))))
# The recorded steps are exactly the formula:
assert torch.allclose(step.scaled_scores, step.scores / math.sqrt(config.head_dim), atol=1e-5)
assert torch.allclose(step.output, step.weights @ step.v, atol=1e-4)

# %% [markdown]
# ## 6. Multi-head attention
#
# Each head has its own W_Q, W_K, W_V of width d_model / heads, so each looks for something
# different. The same word's attention differs from head to head:

# %%
labels = trace.source_labels
for head in range(config.n_heads):
    row = step.weights[0, head, 0]
    print(f"head {head}: '{labels[0]}' →", ", ".join(f"{l} {100 * float(w):.0f}%" for l, w in zip(labels, row)))

# %% [markdown]
# ## 7. The encoder–decoder: English in, French out
#
# The encoder reads "I am good." once; the decoder writes French one token at a time, attending
# to what it has written (masked: never the future) and, through cross-attention, to the
# English.

# %%
for sentence in ["I am good.", "A dog ate the food because it was hungry."]:
    print(sentence, "→", translator.translate([sentence], DecodingConfig(beam_size=4))[0])
cross = trace.recorder.attention("cross", config.decoder_layers - 1).weights[0].mean(dim=0)
for row, produced in zip(cross, trace.produced_labels):  # row i is the step that produced token i
    print(f"producing {produced:>10}, the decoder looks most at '{trace.source_labels[int(row.argmax())]}'")
masked = trace.recorder.attention("decoder", 0).weights[0, 0]
assert torch.all(masked.triu(diagonal=1) == 0), "the decoder never attends to later positions"

# %% [markdown]
# ## 8. "it" → "dog"
#
# Which heads make "it" attend to "dog" in "A dog ate the food because it was hungry"? Rank every
# layer and head, and draw the strongest one as the seeds do: a line from "it" to every word,
# thicker for a larger weight.

# %%
dog = trace_translation(model, tokenizer, "A dog ate the food because it was hungry.")
ranking = rank_heads(dog, "it", "dog")
for score in ranking[:5]:
    print(f"layer {score.layer} head {score.head}: {100 * score.weight:.1f}% (strongest: {score.strongest})")
best = ranking[0]
weights = dog.recorder.attention("encoder", best.layer).weights[0, best.head]
it_position = dog.source_labels.index("it")
save_figure(
    line_view(
        weights,
        dog.source_labels,
        dog.source_labels,
        highlight=it_position,
        title=f"'it' in layer {best.layer}, head {best.head}",
    ),
    OUT / "it-dog.png",
)


# The same picture as a standalone page that works like the web page: point at a word to see its
# lines. It opens offline in any browser.

# %%
(OUT / "it-dog.html").write_text(
    attention_page(
        weights, dog.source_labels, dog.source_labels, title=f"encoder, layer {best.layer}, head {best.head}"
    ),
    encoding="utf-8",
)

# %% [markdown]
# Every head at once, as the page's model view shows them: one small heatmap per layer and head
# on one colour scale, and, as its head view does for a word, where each head of the last layer
# sends "it".

# %%
encoder = torch.stack(
    [dog.recorder.attention("encoder", layer).weights[0] for layer in range(config.encoder_layers)]
)  # (L, H, T, S)
save_figure(
    grid(encoder, dog.source_labels, dog.source_labels, title="encoder, every layer and head"), OUT / "grid.png"
)
for head in range(config.n_heads):
    row = encoder[-1, head, it_position]
    print(
        f"last layer, head {head}: 'it' looks most at {dog.source_labels[int(row.argmax())]!r} ({100 * float(row.max()):.0f}%)"
    )

# %% [markdown]
# ## 9. Contextual meaning: "river bank" vs "money bank", "Apple phones" vs "apple juice"
#
# A word enters the encoder as its embedding plus its position's signal: the same piece at the
# same position starts as the same vector (cosine 1.00), and the encoder's layers pull it apart by
# context. "Apple" and "apple" are different pieces in this cased vocabulary, so they start apart.

# %%
for sentences, word in (
    (["He sat by the river bank.", "He went to the money bank."], "bank"),
    (["I love Apple phones", "I love apple juice"], "apple"),
):
    report = compare_contexts(model, tokenizer, sentences, word)
    print(" / ".join(sentences))
    for layer, name in enumerate(report.layer_names):
        print(f"{name:>10}: cosine {float(report.similarity[layer, 0, 1]):.3f}")

# %% [markdown]
# ## 10. Watch it translate
#
# The decoder writes one piece at a time. At each step: the likeliest next pieces (the output
# softmax), the English it looked at (cross-attention), and the beam's hypotheses with their
# log-probabilities.

# %%
watched = watch_translation(model, tokenizer, "I am good.", DecodingConfig(beam_size=4), top_k=3)
print("translation:", watched.translation)
for step in watched.steps:
    looked = step.cross[-1].mean(dim=0)
    print(
        f"step {step.index + 1}: reads {step.reads!r:>8}, writes {step.writes!r:>8};",
        "next:",
        ", ".join(f"{piece} {100 * p:.0f}%" for piece, p in step.top) + ";",
        f"looked at {watched.source_labels[int(looked.argmax())]!r};",
        "beam:",
        " | ".join(h.text for h in step.beam[:2]),
    )

# %% [markdown]
# ## 11. Why "il" and not "elle"?
#
# Two sentences that differ in one word: "it" is the dog when it was hungry, the soup when it was
# delicious. The probability of il and elle where each translation writes its pronoun, and the
# heads whose attention from "it" moves most between "dog" and "soup".

# %%
pair = contrast(
    translator, "The dog ate the soup because it was hungry.", "The dog ate the soup because it was delicious."
)
for sentence, translation, step in zip(pair.sentences, pair.translations, pair.steps, strict=True):
    chances = ", ".join(f"{choice} {100 * p:.1f}%" for choice, p in step.probabilities.items())
    print(f"{sentence} → {translation} ({chances or 'no il or elle written'})")
for head in pair.heads[:3]:
    print(
        f"layer {head.layer} head {head.head}: to dog {100 * head.first[0]:.0f}→{100 * head.second[0]:.0f}%, "
        f"to soup {100 * head.first[1]:.0f}→{100 * head.second[1]:.0f}%"
    )

# %% [markdown]
# ## 12. The O(n²) cost
#
# The score matrix has one entry per pair of tokens: doubling the length quadruples it. The
# explicit path builds it; PyTorch's fused kernel never does, and needs memory linear in n.

# %%
for n in (256, 512, 1024):
    q = k = v = torch.randn(1, 1, n, 64)
    start = time.perf_counter()
    explicit_attention(q, k, v)
    explicit = time.perf_counter() - start
    start = time.perf_counter()
    scaled_dot_product_attention(q, k, v)
    fused = time.perf_counter() - start
    print(
        f"n={n:5}: {n * n:>9,} scores ({4 * n * n / 2**20:.1f} MiB as float32); explicit {explicit * 1e3:.1f} ms, fused {fused * 1e3:.1f} ms"
    )
