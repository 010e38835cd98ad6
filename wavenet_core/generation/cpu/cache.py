"""Where numba caches the CPU kernel's machine code: a folder named by a digest of every
source the kernel compiles from.

numba keys a cached function on its own source file only. `run_rows` (cpu/loop.py) links
in the sampler, the barrier, the micro-kernels and the weight loads from other files, so
after an edit to one of those (or a `git pull`, or an upgrade over an old install) numba
would load the old machine code of an unchanged cpu/loop.py: it did, here, and tests ran
against a sampler that had been changed. Importing this module (cpu/simd.py does, before
any kernel is defined) points numba's cache at `<base>/wavenet-kernels-<digest>`, where
base is NUMBA_CACHE_DIR if set, else this package's __pycache__; a changed source gives a
new folder, so a stale kernel cannot be found. This sets `numba.config.CACHE_DIR` for the
process (other cached numba functions land in the same folder, which is harmless).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_HERE = Path(__file__).resolve().parent


def kernel_sources(folder: Path = _HERE) -> list[Path]:
    """Every file whose code or constants the compiled kernel contains."""
    return sorted(folder.glob("*.py")) + [folder.parent / "sampling.py"]


def kernel_digest(sources: list[Path] | None = None) -> str:
    digest = hashlib.sha256()
    for path in sources if sources is not None else kernel_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def kernel_cache_dir() -> str:
    base = os.environ.get("NUMBA_CACHE_DIR") or str(_HERE / "__pycache__")
    return os.path.join(base, f"wavenet-kernels-{kernel_digest()}")


numba.config.CACHE_DIR = kernel_cache_dir()
