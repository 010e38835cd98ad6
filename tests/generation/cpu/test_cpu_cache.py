"""The CPU kernel's numba cache is keyed on every source the kernel compiles from
(generation/cpu/cache.py): an edit to a callee's file must not find the old machine code."""

from __future__ import annotations

import shutil

import numba

from wavenet_core.generation.cpu import backend  # noqa: F401  (defines the kernels)
from wavenet_core.generation.cpu.cache import kernel_digest, kernel_sources


def test_the_cache_folder_is_named_by_the_digest_of_every_kernel_source():
    assert numba.config.CACHE_DIR.endswith(f"wavenet-kernels-{kernel_digest()}")
    names = {p.name for p in kernel_sources()}
    assert {"loop.py", "simd.py", "sync.py", "kernels.py", "weights.py", "sampling.py"} <= names


def test_any_edit_to_any_kernel_source_changes_the_digest(tmp_path):
    (tmp_path / "cpu").mkdir()
    for path in kernel_sources():
        folder = tmp_path / "cpu" if path.parent.name == "cpu" else tmp_path
        shutil.copy(path, folder / path.name)
    copies = kernel_sources(tmp_path / "cpu")
    before = kernel_digest(copies)
    assert before == kernel_digest()
    for name in ("cpu/simd.py", "sampling.py"):
        edited = tmp_path / name
        original = edited.read_bytes()
        edited.write_bytes(original + b"\n# a change\n")
        assert kernel_digest(copies) != before, name
        edited.write_bytes(original)
    assert kernel_digest(copies) == before
