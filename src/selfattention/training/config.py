"""Training configuration: a TOML file with ``[model]``, ``[data]`` and ``[train]`` tables.

Any value can be overridden on the command line as ``table.key=value`` (the value is read as
TOML: ``train.max_steps=200``, ``data.corpora=["multi30k"]``). Unknown tables or keys are
errors that name the file and the key.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfattention.config import ModelConfig
from selfattention.data.augment import NoiseShares

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


PRECISIONS = ("float32", "bf16", "fp16")
_LAYER_HEAD = re.compile(r"([0-9]+)\.([0-9]+)")  # train.antecedent_head: "3.0"
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")  # BCP 47's shape: en, fr, pt-BR, zh-Hant


@dataclass(frozen=True)
class DataConfig:
    """Which corpora to train on, and how to cut them into subwords."""

    # A built-in corpus (multi30k, tatoeba), a TSV file ("train.tsv"), or two aligned files
    # ("train.fr,train.en", the source first): data/corpus_specs.py
    corpora: tuple[str, ...] = ("multi30k",)
    repeats: tuple[int, ...] = ()  # how often each corpus appears in one epoch (default once each)
    valid_corpus: str = "multi30k"  # the same kinds, used as given; several joined by "+": "multi30k+tatoeba"
    source_lang: str = "en"  # which side of a built-in corpus is the source; the model records both
    target_lang: str = "fr"
    data_dir: str | None = None
    vocab_size: int = 8000
    max_chars: int = 400  # pairs with a longer side are skipped (and counted)
    # Case and punctuation noise: the share of each epoch's pairs changed, both sides (data/augment.py)
    uppercase: float = 0.0
    titlecase: float = 0.0
    lowercase: float = 0.0
    no_final_punctuation: float = 0.0
    exclamation_to_stop: float = 0.0  # of the pairs ending in "!" on both sides, the share ending in "." instead
    case_markers: bool = False  # ALL-CAPITALS words lower-cased and marked with ⇪ before SentencePiece (data/casing.py)
    # Pairs whose "it" refers to a noun (data/pronoun_pairs.py), made anew each epoch: their number
    # as a share of the corpus pairs of an epoch (0.05 adds 5 %)
    pronoun_pairs: float = 0.0
    # Pronoun pairs' predicates also from what is said of the speaker ("I'm hungry." - "J'ai faim !")
    first_person_predicates: bool = False
    # Pronoun pairs also of a person's act on a thing ("The boy dropped the bottle because it was heavy.")
    person_subjects: bool = False
    # Files of sentences (one a line, or TSV with the English first; # comments) never to generate:
    # an evaluation set's. A relative path is looked for as given, then under the data directory.
    exclude: tuple[str, ...] = ()
    # Clause pairs cut from the corpora's pairs at the commas, semicolons and colons both sides share
    # ("Hello, how are you?" gives "Hello" and "How are you?"; data/clauses.py), added once an epoch
    clause_pairs: bool = False

    def __post_init__(self) -> None:
        self.noise()  # checks the shares
        if not 0.0 <= self.pronoun_pairs <= 1.0:
            raise ValueError(f"pronoun_pairs must be a share between 0 and 1, got {self.pronoun_pairs}")
        if self.repeats and len(self.repeats) != len(self.corpora):
            raise ValueError(
                f"repeats has {len(self.repeats)} entries but corpora has {len(self.corpora)}: give one count a corpus"
            )
        if any(isinstance(count, bool) or not isinstance(count, int) or count < 1 for count in self.repeats):
            raise ValueError(f"repeats must be at least 1 each, got {list(self.repeats)}")
        if not self.corpora:
            raise ValueError("corpora is empty: name at least one training corpus")
        for name in ("source_lang", "target_lang"):
            code = getattr(self, name)
            if not (isinstance(code, str) and LANGUAGE_CODE.fullmatch(code)):
                raise ValueError(
                    f"{name} should be a language code (ISO 639: two or three lower-case letters, e.g. en, fr, zh, "
                    f"or with a region or script: pt-BR, zh-Hant), got {code!r}"
                )
        if self.source_lang == self.target_lang:
            raise ValueError(f"source_lang and target_lang are both {self.source_lang!r}")
        if self.pronoun_pairs and (self.source_lang, self.target_lang) != ("en", "fr"):
            raise ValueError(
                f"pronoun_pairs makes English-French pairs (it → il / elle); this run is "
                f"{self.source_lang}→{self.target_lang}: set pronoun_pairs = 0"
            )

    def noise(self) -> NoiseShares:
        return NoiseShares(
            self.uppercase, self.titlecase, self.lowercase, self.no_final_punctuation, self.exclamation_to_stop
        )

    def repeat_counts(self) -> tuple[int, ...]:
        """How often each of ``corpora`` appears in one epoch."""
        return self.repeats or (1,) * len(self.corpora)


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation: the paper's Adam, warm-up and inverse-square-root schedule."""

    max_tokens: int = 4096  # padded tokens per batch
    accumulate: int = 1  # batches per optimiser step
    peak_lr: float = 1e-3
    warmup_steps: int = 4000
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-9
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # 0 turns clipping off
    max_epochs: int = 100
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # 0 = no limit; stops cleanly with a checkpoint
    cooldown_steps: int = 0  # the last N of max_steps: the rate falls linearly to near zero
    patience: int = 5  # validations without a better score before stopping; 0 = never
    valid_every: int = 0  # validate every N optimiser steps too (0: at epoch ends only)
    checkpoint_every: int = 1000  # optimiser steps
    keep_checkpoints: int = 5
    average_last: int = 0  # average the last N epoch checkpoints into "averaged/" at the end
    valid_bleu_sentences: int = 1014  # how many validation pairs to translate for BLEU
    seed: int = 1
    threads: int = 0  # torch intra-op threads; 0 = PyTorch's default
    precision: str = "float32"  # or "bf16" (autocast, CPU or CUDA) / "fp16" (autocast with a scaler, CUDA only)
    init_from: str = ""  # a model directory to start from (its weights and vocabulary); "" = from scratch
    onednn_linear: bool = True  # float32 CPU linear layers through oneDNN (selfattention/engine/onednn_linear.py)
    tensorboard: bool = True  # TensorBoard scalars in RUN_DIR/tensorboard/ when the tensorboard extra is installed
    # Supervised attention (training/antecedent.py): "L.H" teaches encoder layer L's head H (from 0) to attend
    # from "it" to its noun in the pronoun pairs; "" = off. The auxiliary loss's weight, per linked sentence:
    antecedent_head: str = ""
    antecedent_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision should be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        at_least_one = ("max_tokens", "accumulate", "max_epochs", "keep_checkpoints", "valid_bleu_sentences")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "warmup_steps",
            "max_steps",
            "max_minutes",
            "cooldown_steps",
            "patience",
            "checkpoint_every",
            "valid_every",
            "average_last",
            "threads",
            "clip_norm",
            "weight_decay",
        ):
            if not getattr(self, name) >= 0:  # `not >=` also refuses NaN
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0.0 < self.peak_lr < float("inf"):  # also refuses NaN
            raise ValueError(f"peak_lr must be a positive number, got {self.peak_lr}")
        if self.cooldown_steps and not 0 < self.cooldown_steps <= self.max_steps:
            raise ValueError(
                f"cooldown_steps={self.cooldown_steps} needs max_steps at least as large (the cool-down ends the run), "
                f"got max_steps={self.max_steps}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        parse_layer_head(self.antecedent_head)
        if not 0.0 < self.antecedent_weight < float("inf"):  # also refuses NaN
            raise ValueError(f"antecedent_weight must be a positive number, got {self.antecedent_weight}")

    @property
    def antecedent_layer_head(self) -> tuple[int, int] | None:
        """``antecedent_head`` as (encoder layer, head), both from 0; None when it is off."""
        return parse_layer_head(self.antecedent_head)


def parse_layer_head(text: str) -> tuple[int, int] | None:
    """``"3.0"`` as (3, 0): an encoder layer and a head, counted from 0; ``""`` as None."""
    if not text:
        return None
    match = _LAYER_HEAD.fullmatch(text)
    if match is None:
        raise ValueError(
            f'antecedent_head should be "LAYER.HEAD", an encoder layer and a head counted from 0 (e.g. "3.0"), '
            f'or "" for none; got {text!r}'
        )
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # The keys the file and the overrides gave, per table (the rest are defaults): a run started
    # from a model (train.init_from) takes that model's architecture unless a key says otherwise.
    given: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def supervised_head(self) -> tuple[int, int] | None:
        """``train.antecedent_head`` as (layer, head), checked against the model's shape and the data; None when off.

        Raises ValueError naming the setting when the layer or head is not in the model, or when no
        pronoun pairs are made (nothing would be supervised).
        """
        chosen = self.train.antecedent_layer_head
        if chosen is None:
            return None
        layer, head = chosen
        model, setting = self.model, self.train.antecedent_head
        if layer >= model.encoder_layers or head >= model.n_heads:
            layers = f"{model.encoder_layers} encoder layer{'s' if model.encoder_layers != 1 else ''}"
            heads = f"{model.n_heads} head{'s' if model.n_heads != 1 else ''}"
            raise ValueError(
                f"train.antecedent_head={setting!r} is not a head of this model, which has {layers} "
                f"(0-{model.encoder_layers - 1}) of {heads} (0-{model.n_heads - 1}); layers and heads count from 0"
            )
        if self.data.pronoun_pairs <= 0:
            raise ValueError(
                f"train.antecedent_head={setting!r} needs data.pronoun_pairs > 0: the links between "
                '"it" and its noun come from the pronoun pairs, and without them there is nothing to supervise'
            )
        return layer, head

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    def to_toml(self) -> str:
        """The whole configuration as TOML that :func:`load_run_config` reads back to the same settings."""
        tables = self.to_dict()
        tables["model"] = {k: v for k, v in tables["model"].items() if k not in ("source_lang", "target_lang")}
        lines: list[str] = []
        for table, values in tables.items():
            lines.append(f"[{table}]")
            for key, value in values.items():
                if value is None:
                    lines.append(f"# {key} is not set")
                else:
                    lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def load_run_config(
    path: Path | str, overrides: list[str] | None = None, *, vocab_size: int | None = None
) -> RunConfig:
    """Read a TOML run configuration and apply ``table.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such configuration file")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: invalid TOML ({error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    for override in overrides or []:
        _apply_override(document, override)
    return run_config_from_dict(document, str(path), vocab_size=vocab_size)


def run_config_from_dict(
    document: dict[str, Any], source: str = "<config>", *, vocab_size: int | None = None
) -> RunConfig:
    unknown = sorted(set(document) - {"model", "data", "train"})
    if unknown:
        raise ValueError(f"{source}: unknown table(s) {', '.join(unknown)}; expected [model], [data], [train]")
    data = _build(DataConfig, document.get("data", {}), f"{source} [data]")
    train = _build(TrainConfig, document.get("train", {}), f"{source} [train]")
    model_table = dict(document.get("model", {}))
    for name in ("source_lang", "target_lang"):
        if name in model_table:
            raise ValueError(f"{source} [model]: {name} is a data setting; set data.{name} instead")
    model_table["source_lang"], model_table["target_lang"] = data.source_lang, data.target_lang
    model_table.setdefault("vocab_size", vocab_size or data.vocab_size)
    try:
        model = ModelConfig.from_dict(model_table)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source} [model]: {error}") from None
    given = {table: frozenset(document.get(table, {})) for table in ("model", "data", "train")}
    return RunConfig(model=model, data=data, train=train, given=given)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _build(cls: Any, table: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(fields)}")
    values = {}
    for key, value in table.items():
        default = fields[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, tuple) and not _same_kinds(value, default):
            kind = type(default[0]).__name__ if default else "value"
            raise ValueError(f"{where}: {key} should be a list of {kind}, got {value!r}")
        if default is None and value is not None and not isinstance(value, str):  # optional paths
            raise ValueError(f"{where}: {key} should be a string, got {value!r}")
        if default is not None and not isinstance(default, tuple) and not _same_kind(value, default):
            hint = f' (in quotes: "{value}")' if isinstance(default, str) and type(value) in (int, float) else ""
            raise ValueError(f"{where}: {key} should be {type(default).__name__}, got {value!r}{hint}")
        values[key] = value
    try:
        return cls(**values)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))


def _same_kinds(value: Any, default: tuple[Any, ...]) -> bool:
    """A tuple whose items are of the kind of the default's items."""
    return isinstance(value, tuple) and (not default or all(_same_kind(item, default[0]) for item in value))


def _apply_override(document: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    table, dot, name = key.strip().partition(".")
    if not sep or not table or not dot or not name:
        raise ValueError(f"override {override!r} should look like table.key=value, e.g. train.max_steps=200")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word is a string: model.norm=pre
    document.setdefault(table, {})[name] = value
