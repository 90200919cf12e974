"""Build and load the C++ kernels (``antialias/csrc``) just in time, once per machine.

Why just in time rather than at ``pip install``: an ahead-of-time build would run in pip's isolated
build environment, which downloads its own multi-GB torch wheel, and the binary would then be tied
to that one torch version. Here the sources ship as package data and are compiled with
:func:`torch.utils.cpp_extension.load` against the torch that is actually imported, on first use.

Cache. The library is built into ``<root>/ext/<key>``, where ``<root>`` is the package's one cache
root (:func:`antialias._download.cache_root`: ``$ANTIALIAS_HOME``, else ``~/.cache/antialias``), and
the key hashes the sources, the compiler flags, the torch and Python versions, torch's C++ ABI and
the CPU's feature flags: every later process (test workers, torchrun ranks, the next run) loads it
without compiling. Concurrency: the build
holds a file lock (``<key>.lock``) and compiles into a temporary directory that is renamed into
place (:func:`antialias._io.publish`) only when complete, so a process never loads a half-written
library; processes that lose the race wait on the lock and load the winner's build. No network is
used.

Fallback. ``ANTIALIAS_PURE=1`` forces the pure-PyTorch kernels. Without a working compiler (or
ninja) the build fails, one ``UserWarning`` says so, and the pure-PyTorch kernels are used.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from antialias._download import cache_root
from antialias._io import fsync_dir, publish

__all__ = ["ENV_CACHE", "ENV_PURE", "Backend", "backend", "cache_dir", "cache_key"]

#: Set to 1 to force the pure-PyTorch kernels (no compilation is attempted).
ENV_PURE = "ANTIALIAS_PURE"
#: The package's cache root; builds go to its ``ext/`` (default ``~/.cache/antialias/ext``).
ENV_CACHE = "ANTIALIAS_HOME"  # the package's cache root (antialias._download.cache_root)

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = ("blur.cpp", "max_blur.cpp", "register.cpp")
_HEADERS = ("common.h",)
_NAME = "antialias_ext"
# -fopenmp: at::parallel_for is OpenMP-based in torch's CPU builds; the OpenMP runtime resolves to
# the libgomp torch already loaded (same soname), so torch.set_num_threads governs our threads too.
# -march=native: the inner loops are written to be auto-vectorised; the build is per machine, and
# the cache key includes the CPU's feature flags, so a cache shared between CPUs stays correct.
_CFLAGS = ("-O3", "-march=native", "-fopenmp")
_LDFLAGS = ("-fopenmp",)

_log = logging.getLogger("antialias")


@dataclasses.dataclass(frozen=True)
class Backend:
    """Which kernels run on CPU: ``name`` is ``"cpp"`` or ``"pure"``; ``detail`` says why/where."""

    name: str
    detail: str
    compile_seconds: float = 0.0

    @property
    def compiled(self) -> bool:
        return self.name == "cpp"


def cache_key() -> str:
    """Hash of everything the binary depends on: sources, flags, torch version and C++ ABI."""
    digest = hashlib.sha256()
    for name in sorted(_SOURCES + _HEADERS):
        digest.update(name.encode())
        digest.update((_CSRC / name).read_bytes())
    abi = getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", None)
    # The Python version too: cpp_extension links libtorch_python, which is built per Python version.
    python = sys.version_info[:2]
    digest.update(repr((_CFLAGS, _LDFLAGS, torch.__version__, abi, python, platform.machine(), _cpu_flags())).encode())
    version = "".join(c if c.isalnum() or c in "._-" else "_" for c in torch.__version__)
    return f"torch{version}-{digest.hexdigest()[:16]}"


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), so that ``-march=native`` builds are keyed per CPU kind."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cache_dir() -> Path:
    """Root of the build cache: ``ext/`` under the package's cache root (``$ANTIALIAS_HOME``)."""
    return cache_root() / "ext"


def _build_and_load(final: Path) -> float:
    """Load ``final``'s library, building it first (under the lock) if absent; returns build seconds."""
    from filelock import FileLock  # start-up cost: ~40 ms measured (-X importtime), needed only to build

    library = final / f"{_NAME}.so"
    if library.is_file():
        torch.ops.load_library(str(library))
        return 0.0
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if library.is_file():  # another process built it while we waited
            torch.ops.load_library(str(library))
            return 0.0
        from torch.utils import cpp_extension  # start-up cost: ~600 ms measured (it imports setuptools)

        _log.warning("antialias: compiling the C++ kernels into %s (once per machine and torch version)", final)
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
        try:
            # Builds in tmp and loads the library from there (is_python_module=False: no Python module).
            cpp_extension.load(
                name=_NAME,
                sources=[str(_CSRC / s) for s in _SOURCES],
                extra_cflags=list(_CFLAGS),
                extra_ldflags=list(_LDFLAGS),
                build_directory=str(tmp),
                is_python_module=False,
                verbose=False,
            )
            with open(tmp / f"{_NAME}.so", "rb") as built:  # durable before it is published
                os.fsync(built.fileno())
            fsync_dir(tmp)
            publish(tmp, final)  # one rename: others see a complete build or none
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return time.perf_counter() - start


@functools.cache
def backend() -> Backend:
    """Load the C++ kernels (building them once per machine).

    Called on the first CPU op (through :func:`antialias._ops.backend`, which then registers the
    ops' Python parts), not at import. Never raises for a failed build: it warns once and returns
    the pure-PyTorch backend.
    """
    if os.environ.get(ENV_PURE, "").strip() not in ("", "0"):
        return Backend("pure", f"{ENV_PURE}={os.environ[ENV_PURE]}")
    final = cache_dir() / cache_key()
    try:
        seconds = _build_and_load(final)
    except (RuntimeError, OSError, ImportError, subprocess.SubprocessError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        warnings.warn(
            f"antialias: the C++ kernels could not be built ({reason}); using the pure-PyTorch kernels, "
            f"which are slower. Install a C++ compiler and ninja, or set {ENV_PURE}=1 to silence this.",
            UserWarning,
            stacklevel=2,
        )
        return Backend("pure", f"build failed: {reason}")
    return Backend("cpp", str(final), seconds)


def description() -> str:
    """Which kernels run, in one line, without building anything (for ``antialias --version``)."""
    if os.environ.get(ENV_PURE, "").strip() not in ("", "0"):
        return f"kernels: pure PyTorch ({ENV_PURE}={os.environ[ENV_PURE]})"
    if backend.cache_info().currsize:  # already resolved in this process
        active = backend()
        return f"kernels: C++ ({active.detail})" if active.compiled else f"kernels: pure PyTorch ({active.detail})"
    final = cache_dir() / cache_key()
    if (final / f"{_NAME}.so").is_file():
        return f"kernels: C++ ({final})"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None or shutil.which("ninja") is None:
        return f"kernels: pure PyTorch (no C++ compiler {compiler!r} or no ninja found)"
    return f"kernels: C++ (compiled on first use into {final})"
