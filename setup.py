"""Builds rnnkit's native engine, a C++ extension (``rnnkit/nn/native/*.cpp``), beside the pure-Python package.

The extension is optional: without a C++ compiler, or without PyTorch in the build environment (``pip install``
with build isolation), the install still succeeds, ``rnnkit.nn.native_available()`` returns False with the reason,
and ``engine="auto"`` runs the explicit engine. The Makefile installs with ``--no-build-isolation`` so that the
extension is compiled against the pinned CPU build of PyTorch that is already installed.

The kernels are compiled for AVX2 with FMA where this CPU has them (every x86-64 server of the last decade), so
that one build runs on the Intel and the AMD hosts alike; ``rnnkit doctor`` reports what was built.
"""

import sys
from pathlib import Path

from setuptools import setup

NATIVE = Path("src/rnnkit/nn/native")


def native_extension():
    """The extension and the command that builds it, or ([], {}) with a note when it cannot be built here."""
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print("rnnkit: PyTorch is not importable at build time; the native engine is not built "
              "(install torch first, then `pip install --no-build-isolation .`)", file=sys.stderr)
        return [], {}

    # -fopenmp: at::parallel_for is inline OpenMP, compiled into the extension; it binds to PyTorch's own libgomp
    flags = ["-O3", "-fopenmp"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]

    class OptionalBuild(BuildExtension):
        """Builds the extension, and lets the install go on without it if there is no working compiler."""

        def run(self):
            try:
                super().run()
            except Exception as error:  # noqa: BLE001 - any compiler failure leaves a working pure-Python install
                print(f"rnnkit: the native engine was not built ({type(error).__name__}: {error}); rnnkit runs on "
                      f"its Python engines (`rnnkit doctor` says so)", file=sys.stderr)

    sources = sorted(str(path) for path in NATIVE.glob("*.cpp"))
    extension = CppExtension("rnnkit.nn.native._C", sources, extra_compile_args=flags, extra_link_args=["-fopenmp"])
    # ninja (installed by the Makefile) compiles the kernel files in parallel; plain setuptools one after another
    return [extension], {"build_ext": OptionalBuild}


extensions, commands = native_extension()
setup(ext_modules=extensions, cmdclass=commands)
