"""Fixtures shared by every test folder: tiny random checkpoints, the main `wavenet serve`
process (tests/helpers/server.py) and a client for it, and a tiny synthetic corpus.

Also Triton's interpreter on machines without CUDA: Triton decides at its first import
whether its library functions run interpreted (TRITON_INTERPRET=1), and torch itself may
import Triton in any test (training does). On a machine without CUDA Triton can only ever
run interpreted, so the variable is set here, before any test runs; the triton backend
tests then run the kernel in the interpreter. With CUDA nothing is set and they run the
compiled kernel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from tests.helpers.server import BACKEND, Server, make_checkpoints
from wavenet_core.audio.wav import write_wav

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Path:
    return make_checkpoints(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(checkpoints, tmp_path_factory):
    srv = Server(checkpoints, {"WAVENET_BACKEND": BACKEND, "WAVENET_MAX_STREAMS": "16",
                               "WAVENET_MAX_BODY_BYTES": str(256 * 1024),
                               "WAVENET_MAX_SECONDS": "30", "WAVENET_MEL_IDLE_SECONDS": "2"},
                 tmp_path_factory.mktemp("logs") / "main.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Two 'speakers' of chirps and noise bursts, a train and a valid split, 16 kHz."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    utterances = []
    for split, count in (("train", 4), ("valid", 2)):
        (root / split).mkdir()
        for i in range(count):
            for speaker in range(2):
                t = np.arange(6000) / 16000
                f0 = 120.0 * (speaker + 1) * (1 + 0.2 * rng.random())
                noise = 0.02 * rng.standard_normal(len(t))
                audio = 0.5 * np.sin(2 * np.pi * f0 * t * (1 + t)) + noise
                path = f"{split}/s{speaker}_{i}.wav"
                write_wav(root / path, audio.astype(np.float32), 16000)
                utterances.append({"path": path, "speaker": f"s{speaker}", "speaker_id": speaker,
                                   "split": split, "text": "", "num_samples": len(t)})
    manifest = {"format": 1, "sample_rate": 16000, "speakers": ["s0", "s1"],
                "utterances": utterances}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root
