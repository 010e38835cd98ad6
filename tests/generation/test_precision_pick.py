"""`precision.fastest`, which `auto` uses to pick a CPU precision at load: by the kernel's
own CPU clock where a backend keeps one, the candidates timed in turn."""

from __future__ import annotations

import time

from wavenet_core.generation.precision import fastest
from wavenet_core.model.config import WaveNetConfig

CONFIG = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=4,
                       classes=16)


class Fake:
    """A backend whose generate costs `cpu` kernel CPU seconds and sleeps `wall`."""

    def __init__(self, name: str, cpu: float | None, wall: float, calls: list):
        self.name, self.cpu, self.wall, self.calls = name, cpu, wall, calls
        self.config = CONFIG
        if cpu is not None:
            self.kernel_cpu_s = 0.0

    def warmup(self) -> None:
        pass

    def new_state(self, n: int) -> None:
        return None

    def open_slot(self, state, slot: int, seed: int = 0) -> None:
        pass

    def generate(self, state, slots, steps, local=None, **rows):
        self.calls.append(self.name)
        if self.cpu is not None:
            self.kernel_cpu_s += self.cpu
        time.sleep(self.wall)


def test_the_kernel_cpu_clock_decides_not_the_wall_clock():
    """A candidate preempted while it was timed (long wall, little CPU) still wins."""
    calls: list[str] = []
    a, b, c = (Fake("a", 3.0, 0.0, calls), Fake("b", 1.0, 0.02, calls),
               Fake("c", 2.0, 0.0, calls))
    assert fastest([a, b, c], steps=8) is b
    assert calls == ["a", "b", "c"] * 3          # in turn, round by round


def test_without_a_kernel_clock_the_wall_clock_decides():
    calls: list[str] = []
    slow, quick = Fake("slow", None, 0.05, calls), Fake("quick", None, 0.0, calls)
    assert fastest([slow, quick], steps=8, rounds=2) is quick
    assert calls == ["slow", "quick"] * 2
