"""CTranslate2 export: a model written as Marian, then converted by CTranslate2's own Marian loader.

CTranslate2 runs encoder-decoder Transformers fast on CPU and GPU, with int8 weights if asked.
:func:`export_ct2` writes the model with :func:`export_marian` into a temporary directory, loads
that with ``transformers`` and converts it with ``ctranslate2.converters.transformers.MarianMTLoader``.
That loader assumes opus-mt's layout, which models trained here do not have:

- opus-mt decoders start from a zero vector (the loader sets ``start_from_zero_embedding``), and
  ``<pad>``, the start id, is the vocabulary's last entry (the loader drops it, and the last row
  of the embeddings). Our decoders start from ``<s>`` (id 1), whose embedding was learned, and
  the last entry is an ordinary piece.

So the loader here is ``MarianMTLoader`` with one switch: when the start token is the last entry
and its embedding is zero (an imported opus-mt model), it converts exactly as CTranslate2 does;
otherwise it keeps every row and starts the decoder from the start token's own embedding
(``decoder_start_token`` in the output's ``config.json``). This module and :mod:`hf_check` are
the only ones that import ``transformers``; ``ctranslate2`` is imported here only.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfattention.data.tokenizer import SubwordTokenizer
from selfattention.interop.errors import InteropError

if TYPE_CHECKING:
    from selfattention.model import Transformer

QUANTIZATIONS = ("float32", "int8", "int8_float32", "int16", "float16", "bfloat16", "int8_float16", "int8_bfloat16")
TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json", "tokenizer_config.json")
INSTALL_HINT = "pip install 'selfattention[ct2]'"


def export_ct2(
    model: Transformer, tokenizer: SubwordTokenizer, out_dir: Path | str, quantization: str = "float32"
) -> Path:
    """Write ``model`` as a CTranslate2 directory: ``model.bin``, ``config.json``, the vocabulary and tokenizer files.

    Files already in ``out_dir`` are kept unless the export writes a file of the same name.
    """
    if quantization not in QUANTIZATIONS:
        raise InteropError(f"unknown quantization {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")
    require_ct2()
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="selfattention-ct2-") as scratch:
        marian_dir, converted = Path(scratch) / "marian", Path(scratch) / "ct2"
        from selfattention.interop.marian import export_marian

        export_marian(model, tokenizer, marian_dir)
        _convert(marian_dir, converted, quantization)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in [*sorted(converted.iterdir()), *(marian_dir / name for name in TOKENIZER_FILES)]:
            shutil.copy2(path, out_dir / path.name)
    return out_dir


def require_ct2() -> None:
    """Fail with an installation hint when ``ctranslate2`` or ``transformers`` is missing."""
    missing = []
    for name in ("ctranslate2", "transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise InteropError(f"exporting to CTranslate2 needs {' and '.join(missing)}: {INSTALL_HINT}")


def _convert(marian_dir: Path, output_dir: Path, quantization: str) -> None:
    """CTranslate2's ``Converter.convert`` over a Marian directory, with the loader of :func:`_marian_loader`."""
    import torch
    from ctranslate2.converters.converter import Converter
    from transformers import MarianMTModel, MarianTokenizer

    class MarianDirectoryConverter(Converter):
        def _load(self) -> Any:
            with torch.no_grad():
                marian = MarianMTModel.from_pretrained(str(marian_dir)).eval()
                marian_tokenizer = MarianTokenizer.from_pretrained(str(marian_dir))
                return _marian_loader(marian)(marian, marian_tokenizer)

    MarianDirectoryConverter().convert(str(output_dir), quantization=quantization)


def _marian_loader(marian: Any) -> Any:
    """``MarianMTLoader`` as CTranslate2 has it for opus-mt, or keeping the start token for our models."""
    from ctranslate2.converters.transformers import BartLoader, MarianMTLoader

    config = marian.config
    start = config.decoder_start_token_id
    start_row = marian.get_input_embeddings().weight[start]
    if start == config.vocab_size - 1 and not bool(start_row.any()):
        return MarianMTLoader()  # opus-mt: <pad> last, a zero vector; CTranslate2's own conversion is exact

    class StartTokenMarianLoader(MarianMTLoader):
        """Every vocabulary row kept; the decoder starts from the start token's embedding."""

        def get_model_spec(self, model: Any) -> Any:
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            return BartLoader.get_model_spec(self, model)  # without _remove_pad_weights

        def set_decoder(self, spec: Any, decoder: Any) -> None:
            BartLoader.set_decoder(self, spec, decoder)  # start_from_zero_embedding stays False

        def get_vocabulary(self, model: Any, tokenizer: Any) -> Any:
            return BartLoader.get_vocabulary(self, model, tokenizer)  # the last entry is not dropped

        def set_config(self, config: Any, model: Any, tokenizer: Any) -> None:
            config.eos_token = tokenizer.eos_token
            config.unk_token = tokenizer.unk_token
            config.decoder_start_token = tokenizer.convert_ids_to_tokens(model.config.decoder_start_token_id)

    return StartTokenMarianLoader()
