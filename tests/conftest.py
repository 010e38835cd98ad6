"""Suite-wide setup: Triton's interpreter on machines without CUDA.

Triton decides at its first import whether its library functions run interpreted
(TRITON_INTERPRET=1), and torch itself may import Triton in any test (training does). On
a machine without CUDA Triton can only ever run interpreted, so the variable is set here,
before any test runs; the triton backend tests then run the kernel in the interpreter.
With CUDA nothing is set and they run the compiled kernel.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
