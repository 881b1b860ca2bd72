"""A practitioner's model: an opus-mt-en-fr-shaped MarianMTModel, built here and briefly fitted.

    python benchmarks/opus_shaped_model.py --out /tmp/opus-shaped            # build, fit, save
    selfattention import-hf /tmp/opus-shaped --out /tmp/opus-shaped-ours       # our format
    flock /tmp/selfattention-bench.lock python benchmarks/translation_speed.py \
        --model /tmp/opus-shaped-ours --rounds 3 --engines "ours float32" "ours int8" "CT2 float32" "CT2 int8"

No model is downloaded: Helsinki-NLP/opus-mt-en-fr's shape is rebuilt with transformers'
``MarianMTModel`` (d_model 512, 6 + 6 layers, 8 heads, feed-forward 2048, swish, static sinusoidal
positions, shared embeddings, the start token being ``<pad>``), with two SentencePiece models
(English, French) trained on the corpora and joined into one ``vocab.json`` as opus-mt lays it out
(``</s>`` 0, ``<unk>`` 1, ..., ``<pad>`` last). The corpora here hold fewer pieces than opus-mt's
59,514 (about 25k), so the vocabulary is filled up to ``--vocab`` with entries no input produces
(``<unused…>``): the embedding and the output projection, a large share of a decoding step, then
have the real model's size. It is then fitted for ``--steps`` steps on Multi30k, so that its
translations end about where sentences end (an untrained model runs to the length limit, which no
speed figure should measure); it prints their mean length against the references' at the end. Its
translations are not good; its speed is that of the real model's shape.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

from selfattention.data import load_corpus


def train_spm(lines: list[str], vocab_size: int) -> bytes:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
    )
    return model.getvalue()


def write_tokenizer(out: Path, english: list[str], french: list[str], pieces_per_side: int, size: int) -> int:
    """source.spm, target.spm and vocab.json in ``out``, filled up to ``size`` entries; the vocabulary's size."""
    protos = [train_spm(english, pieces_per_side), train_spm(french, pieces_per_side)]
    pieces: dict[str, None] = {}
    for proto in protos:
        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(proto)
        for index in range(processor.get_piece_size()):
            if not (processor.is_control(index) or processor.is_unknown(index)):
                pieces.setdefault(processor.id_to_piece(index))
    vocab = {"</s>": 0, "<unk>": 1, **{piece: index + 2 for index, piece in enumerate(pieces)}}
    for index in range(size - 1 - len(vocab)):
        vocab[f"<unused{index}>"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    (out / "source.spm").write_bytes(protos[0])
    (out / "target.spm").write_bytes(protos[1])
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({"source_lang": "en", "target_lang": "fr"}))
    return len(vocab)


def opus_mt_config(vocab_size: int, d_model: int, layers: int) -> MarianConfig:
    """Helsinki-NLP/opus-mt-en-fr's configuration (at ``d_model`` 512 and 6 layers)."""
    return MarianConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        activation_function="swish",
        scale_embedding=True,
        static_position_embeddings=True,
        max_position_embeddings=512,
        pad_token_id=vocab_size - 1,
        decoder_start_token_id=vocab_size - 1,
        eos_token_id=0,
        forced_eos_token_id=0,
        dropout=0.1,
        share_encoder_decoder_embeddings=True,
    )


def fit(
    model: MarianMTModel, tokenizer: MarianTokenizer, pairs: list[tuple[str, str]], args: argparse.Namespace
) -> None:
    """A few hundred steps of AdamW on sentence pairs, in bfloat16 autocast."""
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    model.train()
    start = time.monotonic()
    for step in range(1, args.steps + 1):
        batch = rng.sample(pairs, args.batch)
        inputs = tokenizer([s for s, _ in batch], text_target=[t for _, t in batch], return_tensors="pt", padding=True)
        inputs["labels"][inputs["labels"] == tokenizer.pad_token_id] = -100
        warm = min(1.0, step / max(1, args.steps // 10))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.3f} ({time.monotonic() - start:.0f} s)", flush=True)
    model.eval()


def report_lengths(model: MarianMTModel, tokenizer: MarianTokenizer, pairs: list[tuple[str, str]]) -> None:
    """Greedy translations of ``pairs``' sources: two of them, and their mean length against the references'."""
    sources = [s for s, _ in pairs]
    generated = model.generate(**tokenizer(sources, return_tensors="pt", padding=True), num_beams=1, max_new_tokens=100)
    texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
    for source, text in list(zip(sources, texts, strict=True))[:2]:
        print(f"{source} -> {text}")
    pieces = [len(tokenizer(text_target=t)["input_ids"]) for t in texts]
    wanted = [len(tokenizer(text_target=t)["input_ids"]) for _, t in pairs]
    print(
        f"output length: {sum(pieces) / len(pieces):.1f} pieces on average, the references {sum(wanted) / len(wanted):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the MarianMTModel and its tokenizer")
    parser.add_argument("--data-dir", help="corpora directory (default $SELFATTENTION_DATA or ../shared/data)")
    parser.add_argument("--pieces", type=int, default=32000, help="SentencePiece pieces a side (default 32000)")
    parser.add_argument(
        "--vocab",
        type=int,
        default=59514,
        help="vocabulary entries, filled up if fewer pieces (default 59514, opus-mt's)",
    )
    parser.add_argument("--d-model", type=int, default=512, help="width (default 512, opus-mt's)")
    parser.add_argument("--layers", type=int, default=6, help="layers a stack (default 6, opus-mt's)")
    parser.add_argument("--steps", type=int, default=900, help="fitting steps (default 900)")
    parser.add_argument("--batch", type=int, default=32, help="sentence pairs a step (default 32)")
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4; 1e-3 diverged)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(args.out)
    pairs = load_corpus("multi30k", "train", args.data_dir) + load_corpus("tatoeba", "train", args.data_dir)
    vocab_size = write_tokenizer(out, [s for s, _ in pairs], [t for _, t in pairs], args.pieces, args.vocab)
    print(f"vocabulary: {vocab_size} entries")
    tokenizer = MarianTokenizer.from_pretrained(out)
    model = MarianMTModel(opus_mt_config(vocab_size, args.d_model, args.layers))
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    fit(model, tokenizer, load_corpus("multi30k", "train", args.data_dir), args)
    model.save_pretrained(out)
    report_lengths(model, tokenizer, load_corpus("multi30k", "test", args.data_dir)[:64])
    print(f"saved {out}")


if __name__ == "__main__":
    main()
