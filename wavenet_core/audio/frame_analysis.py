"""Compiled per-frame analysis of the log-mel: the inverse-filterbank spectrum, linear
prediction (lpc.py) and voicing (voicing.py). The math and its reasons live in those
modules; this one only runs it fast, since the generation session analyses every frame of
every stream as it goes (in numpy, about 150 us a frame for each: several percent of a
batch-16 step of the vocoder; here a few us).

Each frame is analysed alone, in one fixed order of plain IEEE operations (no fast-math),
so a frame's result never depends on which other frames are analysed in the same call:
chunks and a streamed mel give the whole mel's rows bitwise. Everything compiled lives in
this one file, so numba's cache (keyed on the file) is never stale for a helper.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TINY = 1e-30
_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _spectrum(frame, scale, starts, cols, weights, out):
    """One log-mel frame -> magnitude per FFT bin: bin k is the weighted mean of the
    filters covering it (the sparse non-negative inverse, lpc._inverse)."""
    mean = np.exp(frame.astype(np.float64)) * scale
    for k in range(out.shape[0]):
        acc = 0.0
        for i in range(starts[k], starts[k + 1]):
            acc += weights[i] * mean[cols[i]]
        out[k] = acc


@njit(**_JIT)
def levinson(r, order):
    """Autocorrelation r_0 .. r_order (r_0 > 0) -> a_1 .. a_order of A(z), float64."""
    a = np.zeros(order)
    old = np.zeros(order)
    error = r[0]
    for i in range(order):
        acc = 0.0
        for j in range(i):
            acc += a[j] * r[i - j]
        k = -(r[i + 1] + acc) / error
        old[:i] = a[:i]
        for j in range(i):
            a[j] = old[j] + k * old[i - 1 - j]
        a[i] = k
        error *= 1.0 - k * k
    return a


@njit(**_JIT)
def lpc_frames(mel, frames, scale, starts, cols, weights, cosines, lag_window, noise_floor,
               expansion):
    """Coefficients a_1 .. a_order [len(frames), order] float32 of the listed frames:
    spectrum, power, the cosine sum for r_0 .. r_order (`cosines` [bins, lags]: every lag
    advances one bin at a time, independent chains), lag window and noise floor,
    Levinson-Durbin, times `expansion` [order] (gamma^k) (lpc.py's steps 1-5)."""
    bins, lags = cosines.shape
    order = lags - 1
    out = np.zeros((frames.shape[0], order), np.float32)
    mag = np.empty(bins)
    r = np.empty(lags)
    for n in range(frames.shape[0]):
        _spectrum(mel[frames[n]], scale, starts, cols, weights, mag)
        r[:] = 0.0
        for k in range(bins):
            power = mag[k] * mag[k]
            for lag in range(lags):
                r[lag] += cosines[k, lag] * power
        for lag in range(lags):
            r[lag] *= lag_window[lag]
        r[0] *= 1.0 + noise_floor
        out[n] = (levinson(r, order) * expansion).astype(np.float32)
    return out


@njit(**_JIT)
def voicing_features(mag, low, width, lags):
    """A magnitude spectrum -> (low-band log power ratio, harmonicity) (voicing.py's
    steps 2 and 3)."""
    below, above = 0.0, 0.0
    for k in range(mag.shape[0]):
        if k < low:
            below += mag[k] * mag[k]
        else:
            above += mag[k] * mag[k]
    ratio = np.log(below + TINY) - np.log(above + TINY)
    if lags.shape[0] == 0:               # a grid too coarse to see a pitch
        return ratio, 0.0
    n = low - width + 1
    centre = (width - 1) // 2
    x = np.log(mag[:low] + TINY)
    d = np.empty(n)
    for i in range(n):                   # the ripple: less the moving average
        trend = 0.0
        for j in range(width):
            trend += x[i + j]
        d[i] = x[i + centre] - trend / width
    energy = np.empty(n)                 # energy[i] = sum of d[:i+1]^2
    total = 0.0
    for i in range(n):
        total += d[i] * d[i]
        energy[i] = total
    best = 0.0
    for lag in lags:
        dot = 0.0
        for j in range(n - lag):
            dot += d[j] * d[j + lag]
        head, tail = energy[n - 1 - lag], total - energy[lag - 1]
        best = max(best, dot / np.sqrt(head * tail + TINY))
    return ratio, best


@njit(**_JIT)
def voicing_frames(mel, frames, scale, starts, cols, weights, low, width, lags, w0, w1, w2):
    """Voicing scores w0 + w1 * ratio + w2 * harmonicity [len(frames)] float32."""
    out = np.zeros(frames.shape[0], np.float32)
    mag = np.empty(starts.shape[0] - 1)
    for n in range(frames.shape[0]):
        _spectrum(mel[frames[n]], scale, starts, cols, weights, mag)
        ratio, harmonicity = voicing_features(mag, low, width, lags)
        out[n] = w0 + w1 * ratio + w2 * harmonicity
    return out


@njit(**_JIT)
def spectrum(frame, scale, starts, cols, weights):
    """One frame's magnitude spectrum (lpc.frame_spectrum)."""
    out = np.empty(starts.shape[0] - 1)
    _spectrum(frame, scale, starts, cols, weights, out)
    return out
