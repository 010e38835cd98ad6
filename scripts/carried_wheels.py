"""The wheels scripts/gpu-check and scripts/gpu-train carry to the GPU machine.

That machine has Python 3.12 with torch, triton, numba and numpy, no network, and neither
safetensors nor tqdm, which the library needs (checkpoints; progress bars). Their wheels
travel with the tree in scripts/wheels/: the versions constraints.txt pins, built for
CPython 3.12 on manylinux x86_64 (`make gpu-wheels` downloads them again after a pin
changes; tests/packaging/test_gpu_check.py checks that they match).

`use_carried_wheels()` unpacks the wheel of each package that does not import here into a
folder of its own (a wheel is a zip laid out as site-packages expects; safetensors holds a
compiled extension, which cannot be imported from inside a zip) and puts the folders
first on sys.path. The scripts hand the same folders to their child processes through
PYTHONPATH. Where the packages are installed nothing is unpacked.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

WHEELS = Path(__file__).resolve().parent / "wheels"
PACKAGES = ("safetensors", "tqdm")
UNPACKED = Path(tempfile.gettempdir()) / "wavenet-carried-wheels"


def wheel_for(name: str, folder: Path = WHEELS) -> Path:
    """The one wheel of `name` in `folder`."""
    found = sorted(folder.glob(f"{name}-*.whl"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {name} wheel in {folder}, found "
                                f"{[p.name for p in found]} (run `make gpu-wheels`)")
    return found[0]


def unpack(wheel: Path, into: Path = UNPACKED) -> Path:
    """`wheel` unpacked into `into`/<wheel name> (once: a later call reuses it)."""
    target = into / wheel.stem
    if target.is_dir():
        return target
    into.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=into))
    try:
        with zipfile.ZipFile(wheel) as z:
            scattered = sorted({n.split("/")[0] for n in z.namelist()
                                if n.split("/")[0].endswith(".data")})
            if scattered:
                raise ValueError(f"{wheel.name} installs files outside site-packages "
                                 f"({scattered}): it needs pip, not unpacking")
            for info in z.infolist():
                path = z.extract(info, partial)
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    os.chmod(path, mode & 0o777)
        try:
            partial.rename(target)
        except OSError:          # another process unpacked it meanwhile
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def use_carried_wheels(names: tuple[str, ...] = PACKAGES, into: Path = UNPACKED) -> list[str]:
    """Put the carried wheel of each of `names` that does not import here first on sys.path;
    returns the folders added (for a child's PYTHONPATH), none where all are installed."""
    folders = [str(unpack(wheel_for(name), into)) for name in names
               if importlib.util.find_spec(name) is None]
    sys.path[:0] = folders
    importlib.invalidate_caches()
    return folders
