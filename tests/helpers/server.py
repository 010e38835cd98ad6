"""Tiny random checkpoints and real `wavenet serve` processes on 127.0.0.1, for the tests
and the benchmarks.

The main server serves a plain model, a multi-speaker one with names, a mel-conditioned
one and a damaged file, with the compiled "cpu" backend when it imports (bitwise batch
invariance) and the torch backend otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(layers_per_stack=4, stacks=2, residual_channels=16, skip_channels=32)
SPEAKERS = ["ann", "bob", "cy"]
MEL = dict(n_mels=20, n_fft=512, win_length=512, hop_length=128)


def cpu_backend_available() -> bool:
    try:
        from wavenet_core.generation.cpu.backend import CpuBackend  # noqa: F401
    except ImportError:
        return False
    return True


BACKEND = "cpu" if cpu_backend_available() else "torch"


def make_checkpoints(folder: Path, damaged: bool = True) -> Path:
    """plain, spk (named speakers), mel and, unless `damaged` is False, a damaged file."""
    import torch

    from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint

    torch.manual_seed(1234)
    save_checkpoint(folder / "plain.safetensors", WaveNet(WaveNetConfig(**SMALL)))
    save_checkpoint(folder / "spk.safetensors", WaveNet(WaveNetConfig(**SMALL, num_speakers=3)),
                    {"speakers": json.dumps(SPEAKERS)})
    save_checkpoint(folder / "mel.safetensors",
                    WaveNet(WaveNetConfig(**SMALL, mel_channels=MEL["n_mels"],
                                          mel=MelConfig(**MEL))))
    if damaged:
        (folder / "broken.safetensors").write_bytes(b"not a safetensors file")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `wavenet serve` subprocess; `url`, `ws_url`, `stop()`. `root`: the source tree it
    runs (default this one; a benchmark may start another revision's copy beside it)."""

    def __init__(self, models: Path, env: dict[str, str], log_path: Path,
                 args: tuple[str, ...] = (), root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/stream"
        # every test client comes from 127.0.0.1: the per-client cap is lifted unless a
        # test sets it (tests/server/test_fairness.py does)
        full_env = {**os.environ, "PYTHONPATH": str(root), "WAVENET_LOG_LEVEL": "info",
                    "WAVENET_WARMUP_SAMPLES": "64", "WAVENET_MAX_STREAMS_PER_CLIENT": "1024",
                    **env}
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wavenet_cli.main", "serve", "--port", str(self.port),
             "--model", str(models), *args], cwd=root, env=full_env, stdout=self._log,
            stderr=subprocess.STDOUT)

    @classmethod
    def ready(cls, models: Path, env: dict[str, str], log_path: Path,
              args: tuple[str, ...] = ()) -> Server:
        """Start one and wait for /readyz; a server that never gets ready is stopped."""
        srv = cls(models, env, log_path, args)
        try:
            srv.wait_ready()
        except BaseException:
            srv.stop()
            raise
        return srv

    def wait_ready(self, timeout: float = 240.0) -> list[int]:
        """Poll /readyz until 200; returns every status seen (connection refused omitted).
        The limit is generous: under a loaded CI machine a first start (kernel compile or
        load from cache, the precision timing) once took more than 90 s."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                r = httpx.get(self.url + "/readyz", timeout=2)
                seen.append(r.status_code)
                if r.status_code == 200:
                    return seen
                if r.json().get("status") == "no models loaded":
                    raise RuntimeError(f"no model loaded: {self.log()}")
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus text, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    key = f"{name}{{{want}}}" if want else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
