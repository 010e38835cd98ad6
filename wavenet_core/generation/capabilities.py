"""Which options beyond the seed's design (`config.VARIANT_OPTIONS`) each backend runs.

One table, read by the backends (each refuses, when built, a model using an option it
lacks, naming the option) and by `registry.make_backend` ("auto" picks a backend that runs
the model). It imports no backend, so asking costs nothing and no backend depends on the
registry.
"""

from __future__ import annotations

from wavenet_core.model.config import VARIANT_OPTIONS, WaveNetConfig

BACKEND_OPTIONS: dict[str, tuple[str, ...]] = {
    "torch": VARIANT_OPTIONS,        # the per-step reference runs every option
    "cpu": VARIANT_OPTIONS,          # docs/cpu-kernel.md, docs/excitation.md
    "triton": VARIANT_OPTIONS,       # for models whose weight tiles fit (triton.backend)
    "cuda-graph": (),                # the seed's design only
}


def unsupported(config: WaveNetConfig, backend: str) -> list[str]:
    """The options of `config` that `backend` cannot run, as `name=value`."""
    return config.unsupported_options(BACKEND_OPTIONS[backend])


def require(config: WaveNetConfig, backend: str) -> None:
    """ValueError naming every option of `config` that `backend` cannot run."""
    config.require_seed_design(backend, BACKEND_OPTIONS[backend])
