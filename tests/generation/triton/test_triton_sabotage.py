"""The kernel's checks fail on the bugs they exist for: each sabotaged kernel
(tests/helpers/kernel_mutants.py: ring offset, tap order, bias) fails the primed checks of
test_triton_primed.py, small configs and config B; the ring-offset mutant passes the
zero-start check, which is why the primed checks exist.

Interpreter only: the mutants are the kernel's own source with one edit, so what fails
here fails the same way compiled (and compiling three mutants would cost a GPU run
minutes).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

if importlib.util.find_spec("triton") is None:      # see test_triton_backend.py
    pytest.skip("triton is not installed", allow_module_level=True)

from tests.generation.triton.test_triton_primed import (  # noqa: E402
    PRIMED,
    config_b_gaps,
    primed_gap,
)
from tests.helpers.kernel_mutants import MUTANTS, mutant_kernel  # noqa: E402

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason="the interpreter proves the checks can fail")


@pytest.mark.parametrize("name", list(MUTANTS))
def test_each_sabotaged_kernel_fails_the_primed_checks(name):
    kernel = mutant_kernel(name)
    for config, histories, steps in PRIMED.values():
        assert primed_gap(config, histories, steps, kernel=kernel) > 0.1
    to_fp32, _ = config_b_gaps("fp32", kernel=kernel)
    assert to_fp32 > 0.1


def test_a_ring_offset_is_invisible_from_zeroed_rings():
    """Read and write one column off, consistently: from position 0 and zeroed rings the
    logits are the kernel's, so a zero-start test cannot catch it."""
    kernel = mutant_kernel("ring offset")
    for config, _, steps in PRIMED.values():
        assert primed_gap(config, (0, 0), steps, kernel=kernel) < 1e-4
