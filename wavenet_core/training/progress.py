"""A progress bar: tqdm where it is installed, plain lines where it is not (gpu-train's
machine has only torch and numpy)."""

from __future__ import annotations

import sys


class _Plain:
    """The few tqdm methods the library uses; prints `write` lines, nothing else."""

    def __init__(self, iterable=None, **_):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None

    def set_postfix(self, **_) -> None:
        return None

    @staticmethod
    def write(line: str) -> None:
        print(line, file=sys.stderr, flush=True)


def progress_bar(iterable=None, **kwargs):
    """`tqdm(iterable, **kwargs)`, or a silent stand-in without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(iterable, **kwargs)
    return tqdm(iterable, **kwargs)
