"""`selfattention doctor` (and `selfattention --version`): the version, and how this machine translates.

Which engine runs (the C decoding step, or the reference path and why), which build of its
kernels was loaded and what instruction sets it uses, the processor's, oneDNN products, and how
many threads and decoding workers a translation uses. ``doctor`` also says whether the C step
takes a model (by default the bundled one), and if not, why.
"""

from __future__ import annotations

import argparse
import platform
import sys

import selfattention
from selfattention.cli.common import resolve_model
from selfattention.cli.translate import WORKERS_RULE
from selfattention.engine import SWITCH, library, switched_off
from selfattention.engine.variants import FEATURES, variants_for
from selfattention.engine.workers import automatic_workers, can_fork, usable_cores


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor",
        help="say which engine translates here, with which instruction sets and threads",
        description=(
            "Print the package's version; which engine runs (the C decoding step, or the reference "
            "path through PyTorch and why); which build of the C kernels was loaded (AVX-512 with VNNI, "
            "AVX-512, AVX2 or generic) and which the processor supports; whether the Linear layers "
            "run on oneDNN; the threads and decoding workers; and whether the C step takes the model."
        ),
    )
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.set_defaults(run=run_doctor)


def report() -> list[str]:
    """The version and the engine, one line each."""
    import torch

    from selfattention.engine.packed import onednn_wanted

    lines = [
        f"selfattention {selfattention.__version__} (Python {platform.python_version()}, torch {torch.__version__})"
    ]
    loaded, why = library.load(), library.why_not()
    if loaded is not None:
        lines.append(
            "engine: the C model (engine/c_model.py; translate and evaluate run it without PyTorch) and the C "
            "decoding step (engine/native_step.py), float32 and int8"
        )
        uses = " ".join(loaded.variant.needs) or "no extension beyond the architecture's baseline"
        lines.append(f"kernels: {loaded.variant.name}, {loaded.variant.label}: uses {uses} ({loaded.path})")
    else:
        lines.append(f"engine: the reference path, each step through PyTorch's modules: {why}")
    if not switched_off():
        built = [v.name for v in variants_for(platform.machine()) if (library.DIRECTORY / v.file).is_file()]
        lines.append(f"kernels built: {', '.join(built) or 'none'} (in {library.DIRECTORY})")
        try:
            supports = library.processor_features()
        except library.LibraryError:
            supports = {}
        if supports:
            has = " ".join(f for f in FEATURES if supports[f]) or "none"
            lacks = " ".join(f for f in FEATURES if not supports[f]) or "none"
            lines.append(
                f"processor ({platform.machine()}): has {has}; lacks {lacks} (of the builds' instruction sets)"
            )
    lines.append(f"Linear layers: {'oneDNN, weights packed at load' if onednn_wanted() else 'PyTorch'}")
    lines.append(f"threads: {torch.get_num_threads()} (PyTorch's); cores this process may use: {usable_cores()}")
    lines.append(f"decoding workers: {workers_here()}")
    if switched_off():
        lines.append(f"{SWITCH}=0 is set: the whole engine is off")
    return lines


def workers_here() -> str:
    """The rule ``translate`` chooses its decoding processes by, and what it gives on this machine."""
    if not can_fork():
        return f"one process (workers need Linux's fork(), and this is {sys.platform})"
    if switched_off():
        return f"one process ({SWITCH}=0; translate --workers N still forks N)"
    most = automatic_workers(sys.maxsize)
    here = "one process here" if most == 1 else f"up to {most} here"
    return (
        f"chosen by translate and evaluate: {WORKERS_RULE} ({here}); --workers N: at most N, --workers 1: one process"
    )


def run_doctor(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator
    from selfattention.engine import decoder_settings

    lines = report()
    directory = resolve_model(args.model)
    model = Translator.load(directory).model
    found = decoder_settings.settings(model)
    if library.load() is None:
        verdict = "decoded through PyTorch (no C engine)"
    elif isinstance(found, str):
        verdict = f"decoded through PyTorch: the C step does not take it, {found}"
    else:
        layers = len(model.decoder.layers)
        verdict = (
            f"decoded by the C step ({layers} layers, {found.heads} heads, {found.norm_placement}, {found.activation})"
        )
    lines.append(f"model {directory}: {verdict}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


class VersionAction(argparse.Action):
    """``--version``: the version line and the engine line of :func:`report`, then exit."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs.get("help", "")))

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        version, engine = report()[:2]
        sys.stdout.write(f"{version}\n{engine}\n")  # `selfattention doctor` says the rest
        parser.exit()


__all__ = ["VersionAction", "add_parser", "report", "run_doctor"]
