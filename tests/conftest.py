"""Shared fixtures and helpers: a tiny synthetic Multi30k-layout corpus, a tiny run configuration,
tiny trained and untrained models; one intra-op thread per test; relative errors; the engine's C library
and its int8 product in float64.

Everything is made here, in temporary directories: no test reads real corpora or the bundled model.
"""

from __future__ import annotations

import dataclasses
import gzip
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from selfattention.model import build_model
from selfattention.model_io import load_config, save_model
from selfattention.training import RunConfig
from selfattention.training.config import run_config_from_dict

# A long training job may share the machine: keep each test to one thread.
torch.set_num_threads(1)

HAS_COMPILER = shutil.which("cc") is not None or shutil.which("gcc") is not None


def _kernels_load() -> bool:
    from selfattention.engine import library

    loaded = library.load() is not None
    library.forget()  # each test that needs it loads it again, as it sets the switch
    return loaded


# Built by `pip install -e .` (make test); test_engine_library.py fails where a compiler could have built them.
needs_kernels = pytest.mark.skipif(not _kernels_load(), reason="the engine's C kernels are not built or not loadable")


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Every test starts on one intra-op thread, whatever an earlier one set (a training run's ``threads``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def package_logger_restored() -> Iterator[None]:
    """The package logger's handlers and level as before the test: a test that prepares a Trainer
    without fitting it leaves no ``train.log`` handler for later tests to write through."""
    import logging

    logger = logging.getLogger("selfattention")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in [h for h in logger.handlers if h not in handlers]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)


@pytest.fixture
def fresh_engine() -> Iterator[None]:
    """The engine's library loaded again before and after the test: it sees the switch and the
    library's files as it sets them, not as an earlier test left them."""
    from selfattention.engine import library

    library.forget()
    yield
    library.forget()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference, relative to the largest magnitude of ``b``."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def int8_reference(
    x: torch.Tensor, values: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """The engine's int8 product in float64: each row of ``x`` quantised to [-127, 127] (scale max|x| / 127,
    x times its float32 inverse, ties to even), exact integer sums with ``values`` ``(N, K)``, one scale per column."""
    x = x.to(torch.float32)
    top = x.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(top > 0, top / 127.0, torch.ones_like(top))
    q = torch.round((x * (1.0 / scale)).clamp(-127, 127)).to(torch.float64)
    y = (q @ values.to(torch.float64).T) * scale.to(torch.float64) * scales.to(torch.float64)
    return y if bias is None else y + bias.to(torch.float64)


ADJECTIVES = [
    ("red", "rouge"),
    ("blue", "bleu"),
    ("green", "vert"),
    ("black", "noir"),
    ("white", "blanc"),
    ("small", "petit"),
    ("big", "grand"),
]
NOUNS = [
    ("dog", "chien"),
    ("cat", "chat"),
    ("horse", "cheval"),
    ("bird", "oiseau"),
    ("man", "homme"),
    ("boy", "garçon"),
]
VERBS = [
    ("runs", "court"),
    ("sleeps", "dort"),
    ("jumps", "saute"),
    ("eats", "mange"),
    ("swims", "nage"),
    ("plays", "joue"),
]
PLACES = [
    ("", ""),
    (" in the park", " dans le parc"),
    (" on the beach", " sur la plage"),
    (" near the house", " près de la maison"),
]
SPLITS = {"train": 200, "val": 20, "test_2016_flickr": 20}


def synthetic_pairs(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Aligned templated pairs: "The red dog runs in the park." / "Le chien rouge court dans le parc."."""
    pairs = []
    for _ in range(count):
        (adj_en, adj_fr), (noun_en, noun_fr) = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        (verb_en, verb_fr), (place_en, place_fr) = rng.choice(VERBS), rng.choice(PLACES)
        pairs.append((f"The {adj_en} {noun_en} {verb_en}{place_en}.", f"Le {noun_fr} {adj_fr} {verb_fr}{place_fr}."))
    return pairs


# A small made-up corpus for the pronoun pairs (data/pronoun_pairs.py): nouns shown with gendered
# articles, predicates after He / She / The N, and clauses that end with a noun.
PRONOUN_NOUNS = {  # English: (French, gender)
    "dog": ("chien", "m"),
    "cow": ("vache", "f"),
    "soup": ("soupe", "f"),
    "cake": ("gâteau", "m"),
    "box": ("boîte", "f"),
    "book": ("livre", "m"),
    "water": ("eau", "f"),
    "market": ("marché", "m"),
}


def pronoun_corpus() -> list[tuple[str, str]]:
    """Pairs that :class:`~selfattention.data.pronoun_pairs.PronounPairs` can make pronoun pairs from."""
    pairs = []
    for english, (french, gender) in PRONOUN_NOUNS.items():
        the = ("l'" if french[0] in "aeiou" else "le " if gender == "m" else "la ") + french
        a = ("un " if gender == "m" else "une ") + french
        pairs += [
            (f"I see the {english}.", f"Je vois {the}."),
            (f"Where is the {english}?", f"Où est {the} ?"),
            (f"This is a {english}.", f"C'est {a}."),
            (f"I like the {english} a lot.", f"J'aime beaucoup {the}."),
            (f"We found a {english}.", f"Nous avons trouvé {a}."),
            (f"I want a {english}.", f"Je veux {a}."),
            (f"This {english} is mine.", f"{'Cette' if gender == 'f' else 'Ce'} {french} est à moi."),
        ]
    pairs += [
        ("He is tired.", "Il est fatigué."),
        ("She is tired.", "Elle est fatiguée."),
        ("She is hungry.", "Elle a faim."),
        ("He was hungry.", "Il avait faim."),
        ("She was hungry.", "Elle avait faim."),
        ("The soup is delicious.", "La soupe est délicieuse."),
        ("The cake was delicious.", "Le gâteau était délicieux."),
        ("The box is too small.", "La boîte est trop petite."),
        ("The book is very small.", "Le livre est très petit."),
        ("The book was empty.", "Le livre était vide."),
        ("The box was open.", "La boîte était ouverte."),
        ("The cake was open.", "Le gâteau était ouvert."),
        ("The soup was in the kitchen.", "La soupe était dans la cuisine."),
        ("The box is in the kitchen.", "La boîte est dans la cuisine."),
        ("He is a student.", "Il est un étudiant."),  # a noun, not a predicate: left out
    ]
    return pairs


def _write_gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0))


def _moses_like(text: str) -> str:
    """Lower-cased, with the final full stop split off, as the official tokenised references are."""
    return text.lower().replace(".", " .")


def with_train(config: RunConfig, **changes: Any) -> RunConfig:
    """``config`` with some ``[train]`` settings changed."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding ``multi30k/{train,val,test_2016_flickr}.{en,fr}.gz`` and ``multi30k/tok/``."""
    root = tmp_path_factory.mktemp("data")
    rng = random.Random(30)
    for stem, count in SPLITS.items():
        pairs = synthetic_pairs(count, rng)
        _write_gz(root / "multi30k" / f"{stem}.en.gz", [s for s, _ in pairs])
        _write_gz(root / "multi30k" / f"{stem}.fr.gz", [t for _, t in pairs])
        if stem == "test_2016_flickr":
            for lang, side in (("en", 0), ("fr", 1)):
                _write_gz(
                    root / "multi30k" / "tok" / f"test_2016_flickr.lc.norm.tok.{lang}.gz",
                    [_moses_like(pair[side]) for pair in pairs],
                )
    return root


@pytest.fixture(scope="session")
def tiny_run_config(tiny_corpus: Path) -> RunConfig:
    """A run configuration small enough to train for a few dozen steps in seconds."""
    return run_config_from_dict(
        {
            "model": {
                "d_model": 32,
                "n_heads": 2,
                "d_ff": 64,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "dropout": 0.1,
            },
            "data": {"corpora": ["multi30k"], "data_dir": str(tiny_corpus), "vocab_size": 120},
            "train": {
                "max_tokens": 256,
                "peak_lr": 3e-3,
                "warmup_steps": 10,
                "checkpoint_every": 5,
                "valid_bleu_sentences": 10,
                "patience": 0,
                "max_epochs": 3,
            },
        },
        "tiny",
    )


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_run_config: RunConfig) -> Path:
    """A finished tiny training run (a few dozen steps): checkpoints, best/, metrics.jsonl, curves.png."""
    from dataclasses import replace

    from selfattention.training import train

    run_dir = tmp_path_factory.mktemp("tiny-run")
    config = replace(tiny_run_config, train=replace(tiny_run_config.train, max_steps=30, max_epochs=10))
    train(config, run_dir, show_progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_run_dir: Path) -> Path:
    """The tiny run's best model: a loadable model directory (it need not translate well)."""
    best = tiny_run_dir / "best"
    assert (best / "model.safetensors").is_file()
    return best


@pytest.fixture(scope="session")
def deep_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained, with the tiny model's tokenizer: 2 encoder layers, 1 decoder layer, 2 heads.

    Its translations are nonsense but not empty (the tiny model's are), and the same every time.
    """
    config = dataclasses.replace(load_config(tiny_model_dir), encoder_layers=2, decoder_layers=1)
    with torch.random.fork_rng():  # a fixed model, and the other tests' random state left alone
        torch.manual_seed(0)
        model = build_model(config)
    directory = tmp_path_factory.mktemp("deep-model")
    save_model(model, directory)
    shutil.copy(tiny_model_dir / "tokenizer.model", directory / "tokenizer.model")
    return directory
