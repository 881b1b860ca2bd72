"""Your data, your language pair: corpora by path, languages, validation every N steps, the
command line's order, logs, and the refusals a practitioner meets (issue 26).

Corpora are small files written here; the real French→English direction reads Multi30k from
../shared/data.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from pathlib import Path

import pytest

from conftest import synthetic_pairs, with_train
from selfattention.cli import main
from selfattention.data import CorpusError
from selfattention.data.corpora import find_data_dir, load_corpus
from selfattention.data.corpus_specs import load_pairs, parse_corpora, parse_corpus
from selfattention.model_io import load_config
from selfattention.training import TrainingError, load_run_config, train
from selfattention.training.config import RunConfig, run_config_from_dict
from selfattention.training.metrics import read_metrics

CONFIGS = Path(__file__).parents[1] / "configs"


def write_tsv(path: Path, pairs: list[tuple[str, str]], *, gz: bool = False) -> Path:
    text = "".join(f"{s}\t{t}\n" for s, t in pairs)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A practitioner's files: a training TSV, a gzipped dev TSV, and aligned test files."""
    import random

    root = tmp_path_factory.mktemp("mine")
    rng = random.Random(26)
    train_pairs, dev_pairs, test_pairs = synthetic_pairs(300, rng), synthetic_pairs(30, rng), synthetic_pairs(20, rng)
    files = {
        "train": write_tsv(root / "train.tsv", train_pairs),
        "dev": write_tsv(root / "dev.tsv.gz", dev_pairs, gz=True),
        "test_src": root / "test.src",
        "test_tgt": root / "test.tgt",
    }
    files["test_src"].write_text("".join(s + "\n" for s, _ in test_pairs), encoding="utf-8")
    files["test_tgt"].write_text("".join(t + "\n" for _, t in test_pairs), encoding="utf-8")
    return files


def own_config(tiny_run_config: RunConfig, files: dict[str, Path], **train: object) -> RunConfig:
    data = dataclasses.replace(
        tiny_run_config.data, corpora=(str(files["train"]),), valid_corpus=str(files["dev"]), data_dir=None
    )
    return with_train(dataclasses.replace(tiny_run_config, data=data), **train)


# --- corpora by path -------------------------------------------------------------------------------


def test_a_corpus_is_named_by_builtin_name_tsv_or_two_files(tmp_path: Path) -> None:
    assert parse_corpus("multi30k").name == "multi30k"
    tsv = parse_corpus(str(tmp_path / "pairs.tsv.gz"))
    assert tsv.name is None and tsv.paths == (tmp_path / "pairs.tsv.gz",)
    aligned = parse_corpus(f"{tmp_path}/a.fr, {tmp_path}/a.en")
    assert aligned.paths == (tmp_path / "a.fr", tmp_path / "a.en")
    assert [spec.text for spec in parse_corpora("multi30k+tatoeba")] == ["multi30k", "tatoeba"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty corpus name"),
        ("a,b,c", "SOURCE,TARGET"),
        ("a.fr,", "SOURCE,TARGET"),
        ("europarl", "unknown corpus 'europarl'"),
    ],
)
def test_a_malformed_corpus_is_refused_saying_how_to_write_it(text: str, message: str) -> None:
    with pytest.raises(CorpusError, match=message):
        parse_corpus(text)


def test_a_plain_text_file_alone_is_not_taken_for_pairs(tmp_path: Path) -> None:
    plain = tmp_path / "train.txt"
    plain.write_text("One sentence.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"train.txt: a single file must be tab-separated pairs .*SOURCE,TARGET"):
        parse_corpus(str(plain))


def test_files_are_read_whole_plain_or_gzipped(own_files: dict[str, Path]) -> None:
    dev = load_pairs(parse_corpus(str(own_files["dev"])), "valid")
    assert len(dev) == 30  # every line: a validation file is used as given, never re-split
    train_pairs = load_pairs(parse_corpus(str(own_files["train"])), "train")
    assert len(train_pairs) == 300
    aligned = load_pairs(parse_corpus(f"{own_files['test_src']},{own_files['test_tgt']}"), "test")
    assert aligned[0][0].startswith("The ") and aligned[0][1].startswith("Le ")


@pytest.mark.parametrize("content", ["", "\n\n\t\n"])
def test_an_empty_or_blank_file_names_itself(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"empty.tsv: no usable pairs"):
        load_pairs(parse_corpus(str(path)), "train")


def test_aligned_files_of_different_lengths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.fr").write_text("un\ndeux\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"a.fr has 2 lines but .*a.en has 1"):
        load_pairs(parse_corpus(f"{tmp_path}/a.fr,{tmp_path}/a.en"), "train")


def test_builtin_corpora_swap_sides_for_the_other_direction(tiny_corpus: Path) -> None:
    en_fr = load_corpus("multi30k", "valid", tiny_corpus)
    fr_en = load_corpus("multi30k", "valid", tiny_corpus, source_lang="fr", target_lang="en")
    assert fr_en == [(t, s) for s, t in en_fr]
    with pytest.raises(CorpusError, match=r"holds en and fr, not de→en"):
        load_corpus("multi30k", "valid", tiny_corpus, source_lang="de", target_lang="en")


@pytest.mark.parametrize("code", ["english", "EN", "e", "fr_"])
def test_an_unknown_language_code_is_refused(tiny_run_config: RunConfig, code: str) -> None:
    with pytest.raises(ValueError, match=r"source_lang should be a language code"):
        dataclasses.replace(tiny_run_config.data, source_lang=code)


def test_pronoun_pairs_are_english_french_only(tiny_run_config: RunConfig) -> None:
    with pytest.raises(ValueError, match="pronoun_pairs makes English-French pairs"):
        dataclasses.replace(tiny_run_config.data, source_lang="fr", target_lang="en", pronoun_pairs=0.05)


def test_the_real_french_to_english_direction_reads_multi30k() -> None:
    """French→English on the real Multi30k of ../shared/data: French sources, English references."""
    root = find_data_dir()
    pairs = load_corpus("multi30k", "test", root, source_lang="fr", target_lang="en")
    french = gzip.decompress((root / "multi30k" / "test_2016_flickr.fr.gz").read_bytes()).decode().splitlines()
    english = gzip.decompress((root / "multi30k" / "test_2016_flickr.en.gz").read_bytes()).decode().splitlines()
    assert len(pairs) == len(french) == 1000
    assert pairs[0] == (french[0].strip(), english[0].strip())


# --- training on one's own files -------------------------------------------------------------------


def test_a_run_on_own_files_validates_every_n_steps_and_records_its_languages(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    config = own_config(tiny_run_config, own_files, max_steps=12, valid_every=4, max_epochs=1)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, source_lang="fr", target_lang="en"))
    best = train(config, tmp_path / "run", show_progress=False)
    valid = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [4, 8, 12]
    assert all(r["at"] == "step" for r in valid)
    assert best == tmp_path / "run" / "best" and (best / "model.safetensors").is_file()
    assert (load_config(best).source_lang, load_config(best).target_lang) == ("fr", "en")
    assert "step 4: validation" in (tmp_path / "run" / "train.log").read_text(encoding="utf-8")


def test_a_run_shorter_than_any_validation_still_leaves_a_best_model(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    config = own_config(tiny_run_config, own_files, max_steps=3)  # an epoch is longer than 3 steps
    best = train(config, tmp_path / "run", show_progress=False)
    assert best.name == "best" and (best / "model.safetensors").is_file()
    assert not [r for r in read_metrics(tmp_path / "run") if r["kind"] == "valid"]  # provisional: not recorded


def test_patience_counts_validations(tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path) -> None:
    """With a learning rate too small to improve anything, patience 2 stops after the third validation."""
    config = own_config(tiny_run_config, own_files, max_steps=40, valid_every=2, patience=2, peak_lr=1e-9)
    train(config, tmp_path / "run", show_progress=False)
    valid = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "valid"]
    assert len(valid) <= 6 and valid[-1]["step"] < 40
    assert "no better validation score for 2 validations" in (tmp_path / "run" / "train.log").read_text()


def test_tensorboard_gets_the_scalars_when_installed(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(own_config(tiny_run_config, own_files, max_steps=4, valid_every=2), tmp_path / "run", show_progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "valid/nll"} <= tags
    steps = [event.step for event in events.Scalars("valid/nll")]
    assert steps == [2, 4]


def test_without_tensorboard_one_line_says_how_to_get_it(
    tiny_run_config: RunConfig,
    own_files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with caplog.at_level(logging.INFO, logger="selfattention"):
        train(own_config(tiny_run_config, own_files, max_steps=2), tmp_path / "run", show_progress=False)
    lines = [r.getMessage() for r in caplog.records if "tensorboard" in r.getMessage().lower()]
    assert len(lines) == 1 and "pip install 'selfattention[tensorboard]'" in lines[0]
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_a_failed_start_leaves_no_run_directory(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    bad = write_tsv(tmp_path / "bad.tsv", [])
    data = dataclasses.replace(tiny_run_config.data, corpora=(str(bad),))
    with pytest.raises(TrainingError, match=r"bad.tsv: no usable pairs"):
        train(dataclasses.replace(tiny_run_config, data=data), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_refuses_changed_settings_but_takes_new_limits(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    config = own_config(tiny_run_config, own_files, max_steps=3)
    train(config, tmp_path / "run", show_progress=False)
    changed = dataclasses.replace(config, data=dataclasses.replace(config.data, vocab_size=200, max_chars=300))
    with pytest.raises(TrainingError, match=r"data.vocab_size 120 → 200; data.max_chars 400 → 300.*may change only"):
        train(changed, tmp_path / "run", resume=True, show_progress=False)
    longer = with_train(config, max_steps=5, threads=1, valid_every=2)  # limits, validation, threads: allowed
    train(longer, tmp_path / "run", resume=True, show_progress=False)
    recorded = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert recorded["train"]["max_steps"] == 5 and recorded["data"]["vocab_size"] == 120


def test_a_setting_newer_than_the_run_may_stay_at_its_default_on_resume(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    """A run begun before data.exclamation_to_stop existed trained without it: only its default resumes."""
    config = own_config(tiny_run_config, own_files, max_steps=3)
    train(config, tmp_path / "run", show_progress=False)
    record = tmp_path / "run" / "run_config.json"
    older = json.loads(record.read_text())
    del older["data"]["exclamation_to_stop"]
    record.write_text(json.dumps(older))
    newer = dataclasses.replace(config, data=dataclasses.replace(config.data, exclamation_to_stop=0.3))
    with pytest.raises(TrainingError, match=r"data.exclamation_to_stop 0.0 \(not recorded: .*\) → 0.3"):
        train(newer, tmp_path / "run", resume=True, show_progress=False)
    train(with_train(config, max_steps=4), tmp_path / "run", resume=True, show_progress=False)  # the default resumes
    assert (tmp_path / "run" / "checkpoints" / "step-00000004").is_dir()


# --- the command line --------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_options_and_overrides_come_in_any_order(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = str(CONFIGS / "tiny.toml")
    status, out, err = cli(
        capsys,
        "train",
        "train.max_steps=7",
        "--config",
        tiny,
        "--print-config",
        "data.source_lang=fr",
        "--no-progress",
        "train.threads=2",
        "data.target_lang=en",
    )
    assert status == 0, err
    assert "max_steps = 7" in out and "threads = 2" in out and 'source_lang = "fr"' in out


def test_print_config_is_toml_that_reads_back_the_same(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = cli(capsys, "train", "--config", str(CONFIGS / "en-fr.toml"), "--print-config", "train.seed=5")
    assert status == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(out, encoding="utf-8")
    assert load_run_config(printed) == load_run_config(CONFIGS / "en-fr.toml", ["train.seed=5"])


def test_an_unknown_argument_is_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--config", str(CONFIGS / "tiny.toml"), "--print-config", "--fast"])
    assert "unrecognized arguments: --fast" in capsys.readouterr().err


def test_one_command_trains_on_own_files_and_evaluate_scores_the_test_file(
    capsys: pytest.CaptureFixture[str], own_files: dict[str, Path], tmp_path: Path, tiny_run_config: RunConfig
) -> None:
    config = tmp_path / "small.toml"
    config.write_text(
        "[model]\nd_model = 32\nn_heads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\n"
        "[data]\nvocab_size = 120\n[train]\nmax_tokens = 256\nwarmup_steps = 10\nvalid_bleu_sentences = 10\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    status, printed, err = cli(
        capsys,
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        "--train",
        str(own_files["train"]),
        "--valid",
        str(own_files["dev"]),
        "train.valid_every=5",
        "--no-progress",
        "train.max_steps=10",
    )
    assert status == 0, err
    assert [r["step"] for r in read_metrics(out) if r["kind"] == "valid"] == [5, 10]
    status, printed, err = cli(
        capsys,
        "evaluate",
        "--model",
        str(out / "best"),
        "--src",
        str(own_files["test_src"]),
        "--ref",
        str(own_files["test_tgt"]),
        "--json",
        "--beam",
        "1",
    )
    assert status == 0, err
    report = json.loads(printed)
    assert report["sentences"] == 20 and "tok:13a" in report["signature"]
    test_tsv = write_tsv(
        tmp_path / "test.tsv",
        list(
            zip(
                own_files["test_src"].read_text().splitlines(),
                own_files["test_tgt"].read_text().splitlines(),
                strict=True,
            )
        ),
    )
    status, again, err = cli(
        capsys, "evaluate", "--model", str(out / "best"), "--test", str(test_tsv), "--json", "--beam", "1"
    )
    assert status == 0, err
    assert json.loads(again)["bleu"] == report["bleu"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"src": "", "ref": "a\n"}, "src.txt (--src): the file is empty"),
        ({"src": "\n \n", "ref": "a\nb\n"}, "src.txt (--src): every line is blank"),
        ({"src": "a\tb\nc\td\n", "ref": "x\ny\n"}, "src.txt (--src): lines hold tabs"),
        ({"src": "a\nb\n", "ref": "x\n"}, "src.txt has 2 lines but"),
        ({"src": "a\n\nc\n", "ref": "x\ny\nz\n"}, "line(s) 2: blank"),
    ],
)
def test_evaluate_refuses_bad_files_naming_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model_dir: Path, files: dict[str, str], message: str
) -> None:
    for side, text in files.items():
        (tmp_path / f"{side}.txt").write_text(text, encoding="utf-8")
    status, out, err = cli(
        capsys,
        "evaluate",
        "--model",
        str(tiny_model_dir),
        "--src",
        str(tmp_path / "src.txt"),
        "--ref",
        str(tmp_path / "ref.txt"),
    )
    assert status == 2 and message in err and "Traceback" not in err and out == ""


def test_bleu_is_tokenised_for_the_target_language() -> None:
    from selfattention.evaluation import score
    from selfattention.evaluation.scores import bleu_tokenizer

    assert bleu_tokenizer("fr") == bleu_tokenizer(None) == "13a"
    assert bleu_tokenizer("zh") == bleu_tokenizer("zh-Hant") == "zh"
    assert bleu_tokenizer("ja") in ("ja-mecab", "13a")  # 13a, with one warning, without mecab
    assert "tok:zh" in score(["我爱你"], ["我爱你"], "zh").signature
    with pytest.raises(ValueError, match="unknown sacreBLEU tokenizer"):
        score(["a"], ["a"], tokenize="klingon")


# --- starting from a model -----------------------------------------------------------------------------


def test_init_from_takes_the_models_architecture_and_languages(tiny_model_dir: Path, tiny_corpus: Path) -> None:
    from selfattention.training.init_from import adopt_start

    config = run_config_from_dict(
        {"data": {"data_dir": str(tiny_corpus)}, "train": {"init_from": str(tiny_model_dir)}}, "tune"
    )
    adopted = adopt_start(config)
    start = load_config(tiny_model_dir)
    assert (adopted.model.d_model, adopted.model.encoder_layers, adopted.model.n_heads) == (
        start.d_model,
        start.encoder_layers,
        start.n_heads,
    )
    assert (adopted.data.source_lang, adopted.data.target_lang) == (start.source_lang, start.target_lang)
    dropout = run_config_from_dict({"model": {"dropout": 0.3}, "train": {"init_from": str(tiny_model_dir)}}, "tune")
    assert adopt_start(dropout).model.dropout == 0.3  # regularisation may differ
    other = run_config_from_dict(
        {"data": {"source_lang": "de", "target_lang": "en"}, "train": {"init_from": str(tiny_model_dir)}}, "tune"
    )
    with pytest.raises(ValueError, match=r"data.source_lang = 'de' here, 'en' in the model"):
        adopt_start(other)


def test_the_french_to_english_recipe_fits_its_time_budget() -> None:
    config = load_run_config(CONFIGS / "fr-en.toml")
    assert (config.data.source_lang, config.data.target_lang) == ("fr", "en")
    assert (config.model.source_lang, config.model.target_lang) == ("fr", "en")
    assert 0 < config.train.max_minutes <= 45 and config.train.valid_every > 0


def test_a_fine_tuning_run_resumes_with_resume_alone(
    tiny_model_dir: Path, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 26 review: a file that does not repeat the architecture, --init-from not given again."""
    config = tmp_path / "tune.toml"
    config.write_text(
        f'[data]\ndata_dir = "{tiny_corpus}"\nvocab_size = 120\n'
        "[train]\nmax_tokens = 256\nwarmup_steps = 5\nvalid_bleu_sentences = 5\ncheckpoint_every = 2\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    common = ["train", "--config", str(config), "--out", str(out), "--no-progress"]
    status, _, err = cli(capsys, *common, "--init-from", str(tiny_model_dir), "train.max_steps=2")
    assert status == 0, err
    status, _, err = cli(capsys, *common, "--resume", "train.max_steps=4")
    assert status == 0, err
    assert (out / "checkpoints" / "step-00000004").is_dir()
    assert load_config(out / "checkpoints" / "step-00000004").d_model == load_config(tiny_model_dir).d_model


def test_a_resume_before_the_first_checkpoint_still_refuses_changed_settings(
    tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path
) -> None:
    config = own_config(tiny_run_config, own_files, max_steps=3, checkpoint_every=100)
    trainer_run = tmp_path / "run"
    from selfattention.training import Trainer

    trainer = Trainer(config, trainer_run, show_progress=False)
    trainer.prepare(resume=False)  # run_config.json and tokenizer.model written; no checkpoint yet
    trainer._close_logs()
    changed = dataclasses.replace(config, data=dataclasses.replace(config.data, vocab_size=200))
    with pytest.raises(TrainingError, match=r"data.vocab_size 120 → 200"):
        train(changed, trainer_run, resume=True, show_progress=False)


def test_preparing_twice_keeps_one_log(tiny_run_config: RunConfig, own_files: dict[str, Path], tmp_path: Path) -> None:
    from selfattention.training import Trainer

    trainer = Trainer(own_config(tiny_run_config, own_files, max_steps=2), tmp_path / "run", show_progress=False)
    trainer.prepare(resume=False)
    trainer.fit()  # prepares again
    log_file = tmp_path / "run" / "train.log"
    handlers = [h for h in logging.getLogger("selfattention").handlers if getattr(h, "path", None) == log_file]
    assert handlers == [] and trainer.text_log is None  # closed with the run
    text = (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert text.count("training stopped") == 1


def test_evaluate_checks_the_tokenizer_before_translating(
    capsys: pytest.CaptureFixture[str], tiny_model_dir: Path, own_files: dict[str, Path]
) -> None:
    status, _, err = cli(
        capsys,
        "evaluate",
        "--model",
        str(tiny_model_dir),
        "--src",
        str(own_files["test_src"]),
        "--ref",
        str(own_files["test_tgt"]),
        "--tokenize",
        "13b",
    )
    assert status == 2 and "--tokenize 13b: choose one of" in err and "Traceback" not in err
