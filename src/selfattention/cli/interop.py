"""`selfattention import-hf`, `export-hf` and `export-ct2`: Hugging Face Marian in and out, CTranslate2 out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.data.marian_tokenizer import load_tokenizer
from selfattention.interop.ct2 import QUANTIZATIONS, export_ct2, require_ct2
from selfattention.interop.errors import InteropError
from selfattention.model_files import CONFIG_FILE

CHECK_SENTENCES = ["I am good.", "The small dog runs in the park."]


def add_parser(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser(
        "import-hf",
        help="turn a Hugging Face Marian model (e.g. opus-mt-en-fr) into a model directory",
        description=(
            "Read a Hugging Face Marian directory (config.json, model.safetensors or pytorch_model.bin, "
            "source.spm, target.spm, vocab.json), as saved by MarianMTModel.save_pretrained or downloaded "
            "from the Hub, and write a model directory that every command takes with --model. Nothing is "
            "downloaded and transformers is not needed; a pytorch_model.bin is read as tensors only."
        ),
        epilog=examples("selfattention import-hf ~/models/opus-mt-en-fr --out opus-en-fr"),
    )
    importer.add_argument("directory", help="the Hugging Face model directory")
    importer.add_argument("--out", required=True, help="the model directory to write")
    importer.add_argument("--force", action="store_true", help="overwrite --out if it already holds a model")
    importer.set_defaults(run=run_import)

    exporter = commands.add_parser(
        "export-hf",
        help="write a model as a Hugging Face Marian directory",
        description=(
            "Write a model directory (one trained here, or one imported) as a Hugging Face Marian directory "
            "that MarianMTModel.from_pretrained and MarianTokenizer.from_pretrained load: config.json, "
            "generation_config.json, model.safetensors, source.spm, target.spm, vocab.json, "
            "tokenizer_config.json. With --check, load it back with transformers and compare."
        ),
        epilog=examples("selfattention export-hf runs/base/best --out hf-en-fr --check"),
    )
    exporter.add_argument("model", help="model directory or bundled model name")
    exporter.add_argument("--out", required=True, help="the Hugging Face directory to write")
    exporter.add_argument("--force", action="store_true", help="overwrite --out if it already holds a model")
    exporter.add_argument(
        "--check",
        action="store_true",
        help="load the export with transformers and compare logits and greedy translations (needs transformers)",
    )
    exporter.add_argument(
        "--check-text", action="append", help="a sentence for --check (repeatable; default: two short ones)"
    )
    exporter.set_defaults(run=run_export)

    ct2 = commands.add_parser(
        "export-ct2",
        help="write a model as a CTranslate2 directory (fast CPU/GPU inference, int8 if asked)",
        description=(
            "Write a model directory as a CTranslate2 model: the model is written as Hugging Face Marian, "
            "converted by CTranslate2's Marian converter (keeping this project's start token), and the "
            "tokenizer files are copied beside it (source.spm cuts the input into pieces). Needs ctranslate2 "
            "and transformers: pip install 'selfattention[ct2]'."
        ),
        epilog=examples("selfattention export-ct2 runs/base/best --out ct2-en-fr --quantization int8"),
    )
    ct2.add_argument("model", help="model directory or bundled model name")
    ct2.add_argument("--out", required=True, help="the CTranslate2 directory to write")
    ct2.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default="float32",
        help="weight type (default float32: the same translations as ours; int8 is smaller and faster on CPU)",
    )
    ct2.add_argument("--force", action="store_true", help="overwrite --out if it already holds a model")
    ct2.set_defaults(run=run_export_ct2)


def run_import(args: argparse.Namespace) -> int:
    from selfattention.interop.marian import import_marian
    from selfattention.model_io import save_model

    out = _output_directory(args.out, args.force, args.directory)
    model, tokenizer = import_marian(args.directory)
    save_model(model, out)
    tokenizer.save(out)
    config = model.config
    assert config is not None
    sys.stdout.write(
        f"Imported {args.directory} into {out}: d_model {config.d_model}, {config.n_heads} heads, "
        f"{config.encoder_layers} + {config.decoder_layers} layers, vocabulary {config.vocab_size}, "
        f"activation {config.activation}.\n"
        f'Try: selfattention translate --model {out} "I am a small frog."\n'
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from selfattention.interop.marian import export_marian
    from selfattention.model_io import load_model

    model_dir = resolve_model(args.model)
    out = _output_directory(args.out, args.force, model_dir)
    model = load_model(model_dir)
    tokenizer = load_tokenizer(model_dir)
    try:
        export_marian(model, tokenizer, out)
    except InteropError as error:
        raise CommandError(f"{model_dir}: {error}") from None
    sys.stdout.write(f"Exported {model_dir} to {out} (MarianMTModel.from_pretrained({str(out)!r}) loads it).\n")
    if not args.check:
        return 0
    from selfattention.interop.hf_check import check_marian_export

    try:
        report = check_marian_export(model, tokenizer, out, args.check_text or CHECK_SENTENCES)
    except InteropError as error:
        raise CommandError(str(error)) from None
    sys.stdout.write(
        f"Check with transformers: source ids {'equal' if report.same_source_ids else 'DIFFER'}, "
        f"largest relative logits difference {report.max_relative_error:.1e}, greedy translations "
        f"{'equal' if report.same_translations else 'DIFFER'}.\n"
    )
    return 0 if report.passed else 1


def run_export_ct2(args: argparse.Namespace) -> int:
    from selfattention.model_io import load_model

    try:
        require_ct2()
    except InteropError as error:
        raise CommandError(str(error)) from None
    model_dir = resolve_model(args.model)
    out = _output_directory(args.out, args.force, model_dir)
    model = load_model(model_dir)
    tokenizer = load_tokenizer(model_dir)
    try:
        export_ct2(model, tokenizer, out, args.quantization)
    except InteropError as error:
        raise CommandError(f"{model_dir}: {error}") from None
    sys.stdout.write(
        f"Exported {model_dir} to {out} for CTranslate2 ({args.quantization}): "
        f"ctranslate2.Translator({str(out)!r}) loads it; {out / 'source.spm'} cuts the input into pieces.\n"
    )
    return 0


def _output_directory(path: str, force: bool, source: Path | str) -> Path:
    out = Path(path)
    if out.resolve() == Path(source).resolve():
        raise CommandError(f"{out}: --out must differ from the directory read")
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a directory")
    if (out / CONFIG_FILE).exists() and not force:
        raise CommandError(f"{out}: already holds a model (config.json); choose another --out or add --force")
    return out
