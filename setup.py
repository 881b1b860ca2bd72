"""Builds the engine's C kernels at install; everything else about the package is in pyproject.toml.

``src/selfattention/engine/kernels/`` (abi.c, products.c, encoder.c, native_step.c, few_queries.c) is linked into one
shared library per instruction-set variant (``src/selfattention/engine/variants.py``: AVX-512 with
VNNI, AVX-512, AVX2, generic on x86-64; generic alone elsewhere), written beside the sources as
``selfattention-<variant>.so``: by ``pip install .`` and ``pip wheel .`` into the package, by
``pip install -e .`` (or ``python setup.py build_ext --inplace``) into the checkout. At run time
``engine/library.py`` loads the best variant the processor supports, through ctypes.

They are plain C libraries, not Python extension modules: no Python headers or libpython, and no
interpreter tag in their names, so the wheel is tagged for any Python 3 on its platform. A variant
that does not build (an old compiler without an instruction set's flag, no compiler at all) is
left out with a warning, not an error: the package still installs, and without a library the
engine stands aside and says so (``selfattention doctor``).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ENGINE = Path("src", "selfattention", "engine")  # relative: setuptools wants relative source paths

_spec = importlib.util.spec_from_file_location("_selfattention_variants", HERE / ENGINE / "variants.py")
assert _spec is not None and _spec.loader is not None
variants = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = variants  # dataclasses look their module up
_spec.loader.exec_module(variants)

MACHINE = platform.machine()


def kernel_libraries() -> list[Extension]:
    """One library per variant built on this machine, each from every source, with the sources' digest."""
    digest = variants.sources_digest(HERE / ENGINE / "kernels")
    kernels = ENGINE / "kernels"
    return [
        Extension(
            f"selfattention.engine.kernels.{Path(variant.file).stem}",
            sources=[str(kernels / name) for name in variants.SOURCES],
            depends=[str(kernels / name) for name in variants.HEADERS],
            include_dirs=[str(kernels)],
            define_macros=[("SELFATTENTION_SOURCES", f'"{digest}"')],
            extra_compile_args=list(variants.flags_for(variant, MACHINE)),
            libraries=["m"],
        )
        for variant in variants.variants_for(MACHINE)
    ]


class BuildKernels(build_ext):
    """build_ext for ctypes libraries: plain ``.so`` names, each variant compiled on its own, none required."""

    def get_ext_filename(self, fullname: str) -> str:
        return os.path.join(*fullname.split(".")) + ".so"

    def build_extension(self, ext: Extension) -> None:
        from setuptools.errors import CCompilerError, CompileError, LinkError

        target = self.get_ext_fullpath(ext.name)
        scratch = os.path.join(self.build_temp, ext.name)  # one directory per variant: the objects differ
        try:
            objects = self.compiler.compile(
                ext.sources,
                output_dir=scratch,
                macros=ext.define_macros,
                include_dirs=ext.include_dirs,
                extra_postargs=ext.extra_compile_args,
                depends=ext.depends,
            )
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.compiler.link_shared_object(objects, target, libraries=ext.libraries)
        except (CCompilerError, CompileError, LinkError, OSError) as error:
            self.warn(f"could not build {Path(target).name} ({error}); the engine will use another variant, or none")


class AnyPythonWheel(bdist_wheel):
    """The libraries use no Python API: one wheel per platform serves every Python 3."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform_tag = super().get_tag()
        return "py3", "none", platform_tag


setup(ext_modules=kernel_libraries(), cmdclass={"build_ext": BuildKernels, "bdist_wheel": AnyPythonWheel})
