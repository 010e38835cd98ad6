"""The feature recipe of an r9y9 wavenet_vocoder model, from its hparams (and meanvar file).

Why: their two feature formulas differ in every step (model/recipe.py), and the hparams
say which one trained the model: v0.1.x presets carry `min_level_db` and `ref_level_db`
(20 log10 normalised to [0, 1]); their later GitHub master's do not, and its features are
standardised with the `meanvar.joblib` its preprocessing wrote (a pickled scikit-learn
StandardScaler), which `--meanvar` supplies: an .npz with `mean` and `scale` arrays, or the
joblib file itself only with `trust_pickle` (unpickling can run code). Hparams without any
audio key (or none at all) mean their LJSpeech preset, a v0.1.x one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wavenet_core.model.recipe import FeatureRecipe

V01_DEFAULTS = {"rescaling": True, "rescaling_max": 0.999, "preemphasis": 0.0,
                "use_lws": True, "min_level_db": -100.0, "ref_level_db": 20.0}
"""v0.1.x's audio hparams as in their LJSpeech preset (lws, no pre-emphasis)."""


AUDIO_KEYS = frozenset({"sample_rate", "fft_size", "hop_size", "win_length", "num_mels",
                        "fmin", "fmax", "window", "highpass_cutoff"})
"""Audio hparams: a file with some of them but no min_level_db is a master one."""


class FeaturesError(ValueError):
    """The hparams or meanvar file do not give a recipe; the message says why."""


def r9y9_recipe(hparams: dict | None, meanvar=None, trust_pickle: bool = False,
                bands: int | None = None) -> FeatureRecipe:
    """The recipe of their features: v0.1.x from its hparams (the preset's without audio
    hparams), master from its hparams plus the `meanvar` file (`bands` mel bands expected)."""
    hparams = hparams or {}
    v01 = ("min_level_db" in hparams or "ref_level_db" in hparams
           or (meanvar is None and not AUDIO_KEYS & set(hparams)))
    if v01:
        if meanvar is not None:
            raise FeaturesError("--meanvar is for r9y9 master features, but these hparams "
                                "have min_level_db / ref_level_db (v0.1.x features, "
                                "normalised to [0, 1] without a meanvar)")
        hp = {**V01_DEFAULTS, **hparams}
        preemphasis = hp["preemphasis"] if hp.get("preemphasize", True) else 0.0
        return FeatureRecipe(
            kind="r9y9", rescaling_max=float(hp["rescaling_max"]) if hp["rescaling"] else 0.0,
            preemphasis=float(preemphasis or 0.0),
            stft="lws" if hp["use_lws"] else "librosa",
            min_level_db=float(hp["min_level_db"]), ref_level_db=float(hp["ref_level_db"]))
    if meanvar is None:
        raise FeaturesError("these hparams have no min_level_db: r9y9 master features, "
                            "standardised with the meanvar.joblib their preprocessing wrote; "
                            "give it with --meanvar (an .npz of `mean` and `scale`, or the "
                            ".joblib with --trust-pickle)")
    if hparams.get("window", "hann") != "hann":
        raise FeaturesError(f"window {hparams['window']!r}: only their default 'hann' is "
                            f"supported")
    mean, scale = read_meanvar(meanvar, trust_pickle)
    if bands is not None and len(mean) != bands:
        raise FeaturesError(f"{meanvar}: {len(mean)} bands, the model has {bands} mel bands")
    return FeatureRecipe(kind="r9y9-master",
                         highpass_cutoff=float(hparams.get("highpass_cutoff", 0.0) or 0.0),
                         mean=tuple(mean), scale=tuple(scale))


def read_meanvar(path, trust_pickle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) float64 of a meanvar file: .npz (`mean`, `scale`), or joblib/pickle
    (a StandardScaler's mean_ / scale_) only when `trust_pickle`."""
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                mean, scale = z["mean"], z["scale"]
        except (OSError, ValueError, KeyError) as exc:
            raise FeaturesError(f"{path}: not an .npz with `mean` and `scale` arrays "
                                f"({exc})") from None
    elif not trust_pickle:
        raise FeaturesError(
            f"{path}: refused: a joblib/pickle file runs code when it is read. If you trust "
            f"it, add --trust-pickle; or save its arrays where you trust it: "
            f"python -c \"import joblib, numpy; s = joblib.load('{path.name}'); "
            f"numpy.savez('meanvar.npz', mean=s.mean_, scale=s.scale_)\"")
    else:
        try:
            import joblib
        except ImportError:
            raise FeaturesError("reading a .joblib meanvar needs joblib (pip install joblib "
                                "scikit-learn)") from None
        try:
            scaler = joblib.load(path)
            mean, scale = scaler.mean_, scaler.scale_
        except Exception as exc:    # whatever unpickling raises (missing module, bad file)
            raise FeaturesError(f"{path}: could not read a StandardScaler's mean_ and "
                                f"scale_ ({type(exc).__name__}: {exc})") from None
    mean, scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    if mean.ndim != 1 or mean.shape != scale.shape or not mean.size:
        raise FeaturesError(f"{path}: mean and scale must be 1-D of the same length, got "
                            f"{mean.shape} and {scale.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise FeaturesError(f"{path}: mean must be finite and scale finite and > 0")
    return mean, scale
