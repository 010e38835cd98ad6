"""A silent tqdm: iterates, and prints only what `write` is given (see README.md)."""

from __future__ import annotations


class tqdm:  # noqa: N801  (the real class's name)
    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable if iterable is not None else []

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass

    @staticmethod
    def write(message, *args, **kwargs):
        print(message, flush=True)
