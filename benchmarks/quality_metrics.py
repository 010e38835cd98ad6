"""The quality report's metrics, each comparing a resynthesis y with the original x.

- log-mel distance (dB, lower is better). With M = exp(log_mel(.)) the mel magnitudes
  [frames, n_mels] (power-1 Slaney mel, the model's config), the floor
  f = max(M_x) * 10^(-80/20) (80 dB below the reference's loudest mel bin) and
  D = 20 * log10(max(M, f)) (= 10 log10 of mel power),
      distance = mean over frames t of sqrt( mean over bands b of (D_x[t,b] - D_y[t,b])^2 ).
- STOI (0..1, higher is better): pystoi.stoi(x, y, sample_rate), classic (not extended).
- wideband PESQ (ITU-T P.862.2, MOS-LQO 1.04..4.64, higher is better): `pesq` package,
  mode 'wb', 16 kHz; NaN where PESQ finds no speech in the reference.
- DNSMOS (no reference; 1..5, higher is better): Microsoft's DNS-challenge predictors in
  the ONNX files the `speechmos` wheel ships (sig_bak_ovr.onnx: P.835 SIG/BAK/OVRL, with
  speechmos's polynomial calibration; model_v8.onnx: P.808 MOS), run with onnxruntime on
  the CPU. Clips shorter than 9.01 s are tiled to that length, as DNSMOS does.
  Nothing is downloaded: the model files are read from the installed wheel.
Lengths are aligned first (both trimmed to the shorter).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from wavenet_core.audio.mel import log_mel
from wavenet_core.model.config import MelConfig

FLOOR_DB = 80.0


def align(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trim both to the shorter length."""
    n = min(len(x), len(y))
    return np.asarray(x[:n], dtype=np.float32), np.asarray(y[:n], dtype=np.float32)


def mel_distance_db(reference: np.ndarray, test: np.ndarray, sample_rate: int,
                    mel_cfg: MelConfig, floor_db: float = FLOOR_DB) -> float:
    """Log-mel spectral distance in dB (module docstring formula); lengths are aligned."""
    x, y = align(reference, test)
    mx = np.exp(log_mel(x, sample_rate, mel_cfg).astype(np.float64))
    my = np.exp(log_mel(y, sample_rate, mel_cfg).astype(np.float64))
    floor = mx.max() * 10.0 ** (-floor_db / 20.0)
    dx = 20.0 * np.log10(np.maximum(mx, floor))
    dy = 20.0 * np.log10(np.maximum(my, floor))
    return float(np.mean(np.sqrt(np.mean((dx - dy) ** 2, axis=1))))


def stoi_score(reference: np.ndarray, test: np.ndarray, sample_rate: int) -> float:
    """Classic STOI (pystoi) after aligning lengths."""
    from pystoi import stoi

    x, y = align(reference, test)
    return float(stoi(x.astype(np.float64), y.astype(np.float64), sample_rate, extended=False))


def pesq_wb(reference: np.ndarray, test: np.ndarray, sample_rate: int) -> float:
    """Wideband PESQ (MOS-LQO); NaN when PESQ cannot score the pair (no speech found)."""
    from pesq import PesqError, pesq

    if sample_rate != 16000:
        raise ValueError("wideband PESQ needs 16 kHz audio")
    x, y = align(reference, test)
    try:
        return float(pesq(sample_rate, x.astype(np.float64), y.astype(np.float64), "wb"))
    except (PesqError, ValueError):  # no speech found, or the library fails on the pair
        return float("nan")


@functools.cache
def _dnsmos(threads: int = 1):
    """speechmos's DNSMOS scorer on sessions limited to `threads` CPU threads."""
    import onnxruntime as ort
    from speechmos import dnsmos

    folder = Path(dnsmos.__file__).parent / "dnsmos_models"
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    scorer = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
    scorer.primary_model_path = str(folder / "sig_bak_ovr.onnx")
    scorer.onnx_sess = ort.InferenceSession(scorer.primary_model_path, options,
                                            providers=["CPUExecutionProvider"])
    scorer.p808_onnx_sess = ort.InferenceSession(str(folder / "model_v8.onnx"), options,
                                                 providers=["CPUExecutionProvider"])
    return scorer


def dnsmos_scores(audio: np.ndarray, sample_rate: int, threads: int = 1) -> dict[str, float]:
    """{'ovrl', 'sig', 'bak', 'p808'} DNSMOS of one clip (no reference needed)."""
    if sample_rate != 16000:
        raise ValueError("DNSMOS needs 16 kHz audio")
    clip = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    out = _dnsmos(threads)(clip, sample_rate, False)
    return {"ovrl": float(out["ovrl_mos"]), "sig": float(out["sig_mos"]),
            "bak": float(out["bak_mos"]), "p808": float(out["p808_mos"])}


def all_metrics(reference: np.ndarray, test: np.ndarray, sample_rate: int,
                mel_cfg: MelConfig, threads: int = 1) -> dict[str, float]:
    """Every metric of the report for one (original, resynthesis) pair."""
    _, y = align(reference, test)
    mos = dnsmos_scores(y, sample_rate, threads)
    return {"mel_distance_db": mel_distance_db(reference, test, sample_rate, mel_cfg),
            "stoi": stoi_score(reference, test, sample_rate),
            "pesq_wb": pesq_wb(reference, test, sample_rate),
            "dnsmos_ovrl": mos["ovrl"], "dnsmos_p808": mos["p808"]}
