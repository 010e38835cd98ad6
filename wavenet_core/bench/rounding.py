"""The size of a CPU precision's rounding on a model's outputs, where no NLL can price it.

`wavenet precision-cost` measures a precision's held-out NLL cost on our checkpoints; a
model with random weights (the r9y9-sized bench model) has no held-out data worth the name,
so this reports what docs/cpu-kernel.md reports for our random configs instead: the
largest |output difference| against fp32, as a share of the largest |fp32 output|.

The stream is the model's own: fp32 generates `steps` samples from `seed`, then every
precision is teacher-forced through those same inputs (with the same mel rows) from a
fresh state, so each sees exactly what fp32 saw and only the arithmetic differs.
"""

from __future__ import annotations

import numpy as np

from wavenet_core.generation.sampling import PCM_SCALE


def output_error(model, precisions, steps: int, local=None, seed: int = 0,
                 threads: int = 1) -> dict[str, float]:
    """{precision: max |out_p - out_fp32| / max |out_fp32|} over `steps` teacher-forced
    steps of one stream (outputs: logits, or a scalar head's mixture / Gaussian
    parameters). `local`: the stream's mel [1, steps, M] (rows, or what the backend
    takes), None without mel."""
    from wavenet_core.generation.cpu.backend import CpuBackend

    def fresh(precision):
        backend = CpuBackend(model, threads=threads, precision=precision, split="never")
        state = backend.new_state(1)
        backend.open_slot(state, 0, seed=seed)
        return backend, state

    backend, state = fresh("fp32")
    values = backend._values                   # scalar input: samples, not codes
    first = float(state.next_value[0]) if values else int(state.next_input[0])
    made = backend.generate(state, [0], steps, local)[0]
    # what generation fed: the slot's first input, then each sample made but the last
    inputs = (np.concatenate([[first], made[:-1] / PCM_SCALE]).astype(np.float32)
              if values else np.concatenate([[first], made[:-1]]))[None]
    outputs = {}
    for precision in dict.fromkeys(("fp32",) + tuple(precisions)):
        backend, state = fresh(precision)
        outputs[precision] = backend.teacher_force(state, [0], inputs, local)
    scale = np.abs(outputs["fp32"]).max()
    return {p: float(np.abs(outputs[p] - outputs["fp32"]).max() / scale)
            for p in precisions}
