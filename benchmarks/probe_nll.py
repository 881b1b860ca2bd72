"""Validation NLL of a model on Multi30k validation, computed in float32 and under bf16 autocast.

    python benchmarks/probe_nll.py MODEL_DIR [--sentences 400] [--data-dir ../shared/data]

Tells whether bfloat16 arithmetic changes what a model computes (benchmarks/results/recipe_probes.md).
"""

from __future__ import annotations

import argparse
import contextlib

import torch

from selfattention.data import collate, load_corpus, make_example, token_batches
from selfattention.decoding import Translator
from selfattention.training.loss import label_smoothed_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    translator = Translator.load(args.model)
    pairs = load_corpus("multi30k", "valid", args.data_dir)[: args.sentences]
    sources = translator.tokenizer.encode_batch([s for s, _ in pairs])
    targets = translator.tokenizer.encode_batch([t for _, t in pairs])
    examples = [make_example(s, t) for s, t in zip(sources, targets, strict=True)]
    model = translator.model.eval()
    for mode in ("float32", "bf16"):
        nll_sum, tokens = 0.0, 0
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()
        with torch.inference_mode():
            for indices in token_batches(examples, 4096, seed=0, epoch=0):
                batch = collate([examples[i] for i in indices])
                with autocast:
                    logits = model(batch.src, batch.tgt_in)
                _, nll = label_smoothed_loss(logits.float(), batch.tgt_out, 0, 0.0)
                nll_sum += float(nll)
                tokens += batch.target_tokens
        print(f"{mode}: validation NLL {nll_sum / tokens:.4f} per token ({len(pairs)} sentences)")


if __name__ == "__main__":
    main()
