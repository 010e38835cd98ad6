"""Each feature recipe equals a reference written from its project's own code within 1e-4
on random audio (tests/helpers/recipes_reference.py), and its features stay inside the
range the server checks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.recipes_reference import (
    V01_PRESET,
    nvidia_reference,
    r9y9_master_reference,
    r9y9_v01_reference,
)
from wavenet_core.audio.mel import log_mel
from wavenet_core.audio.recipes import (
    feature_range,
    feature_range32,
    features,
    lws_frames,
    range_problem,
    within_range,
)
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.recipe import FeatureRecipe

pytest.importorskip("librosa")

SR = 22050
R9Y9_MEL = MelConfig(n_mels=80, n_fft=1024, win_length=1024, hop_length=256, fmin=125.0,
                     fmax=7600.0)
NVIDIA_MEL = MelConfig(n_mels=80, n_fft=1024, win_length=1024, hop_length=256, fmin=0.0,
                       fmax=8000.0)


def random_audio(seed: int, n: int) -> np.ndarray:
    """Noise under a random envelope (quiet and loud stretches) plus a tone."""
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0.001, 0.9, n // 500 + 1), 500)[:n]
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * np.arange(n) / SR)
    return np.clip(rng.uniform(-1, 1, n) * envelope + tone * envelope, -1, 1).astype(np.float32)


@pytest.mark.parametrize("hp", [V01_PRESET,
                                {**V01_PRESET, "preemphasis": 0.97, "rescaling": False},
                                {**V01_PRESET, "use_lws": False, "min_level_db": -80.0,
                                 "ref_level_db": 10.0}])
@pytest.mark.parametrize("n", [22050, 5000 + 77])
def test_r9y9_v01_matches_their_formulas(hp, n):
    wav = random_audio(n, n)
    recipe = FeatureRecipe(kind="r9y9", rescaling_max=hp["rescaling_max"] * hp["rescaling"],
                           preemphasis=hp["preemphasis"],
                           stft="lws" if hp["use_lws"] else "librosa",
                           min_level_db=hp["min_level_db"], ref_level_db=hp["ref_level_db"])
    ours = features(wav, SR, R9Y9_MEL, recipe)
    theirs = r9y9_v01_reference(wav, SR, hp, R9Y9_MEL)
    assert ours.shape == theirs.shape
    if hp["use_lws"]:
        assert len(ours) == lws_frames(n, 1024, 256)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    assert 0.05 < ours.mean() < 0.95 and ours.std() > 0.05          # not all clipped


@pytest.mark.parametrize("cutoff", [0.0, 70.0])
def test_r9y9_master_matches_their_formulas(cutoff):
    rng = np.random.default_rng(3)
    mean, scale = rng.normal(-2.5, 0.5, 80), rng.uniform(0.3, 1.5, 80)
    recipe = FeatureRecipe(kind="r9y9-master", highpass_cutoff=cutoff, mean=tuple(mean),
                           scale=tuple(scale))
    mel = MelConfig(**{**R9Y9_MEL.__dict__, "win_length": 800})
    wav = random_audio(7, 13001)
    np.testing.assert_allclose(features(wav, SR, mel, recipe),
                               r9y9_master_reference(wav, SR, cutoff, mean, scale, mel),
                               rtol=0, atol=1e-4)


def test_nvidia_matches_tacotron2_stft():
    wav = random_audio(11, 9000)
    ours = features(wav, SR, NVIDIA_MEL, FeatureRecipe(kind="nvidia"))
    theirs = nvidia_reference(wav, SR, NVIDIA_MEL)
    assert ours.shape == theirs.shape == (1 + 9000 // 256, 80)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_ours_is_the_log_mel_bitwise():
    wav = random_audio(5, 7001)
    mel = MelConfig()
    assert np.array_equal(features(wav, 16000, mel, FeatureRecipe()), log_mel(wav, 16000, mel))


RECIPES = [(FeatureRecipe(), NVIDIA_MEL),
           (FeatureRecipe(kind="r9y9", rescaling_max=0.999), R9Y9_MEL),
           (FeatureRecipe(kind="r9y9", preemphasis=0.97, stft="librosa"), R9Y9_MEL),
           (FeatureRecipe(kind="r9y9-master", highpass_cutoff=70.0, mean=(-3.0,) * 80,
                          scale=(0.8,) * 80), R9Y9_MEL)]


@pytest.mark.parametrize("recipe,mel", RECIPES)
def test_features_of_any_audio_are_in_range(recipe, mel):
    """Random audio, silence and full-scale tones and square waves all fit the range."""
    t = np.arange(8000) / SR
    signals = [random_audio(2, 8000), np.zeros(8000, np.float32),
               np.sin(2 * np.pi * 1000 * t), np.sign(np.sin(2 * np.pi * 150 * t)),
               np.where(np.arange(8000) % 2, 1.0, -1.0)]
    low, high = feature_range(SR, mel, recipe)
    for wav in signals:
        f = features(wav, SR, mel, recipe)
        assert (f >= low).all() and (f <= high).all(), recipe


@pytest.mark.parametrize("recipe,mel", RECIPES)
def test_the_one_pass_range_check_decides_as_the_float64_one(recipe, mel):
    """`within_range` (a streamed frame's check) against float32 bounds rounded inwards:
    true exactly where `range_problem` finds nothing and the values are finite, also for
    the float32 values next to each bound."""
    low, high = feature_range(SR, mel, recipe)
    low32, high32 = feature_range32(SR, mel, recipe)
    assert (low32 >= low).all() and (np.nextafter(low32, np.float32(-np.inf)) < low).all()
    assert (high32 <= high).all() and (np.nextafter(high32, np.float32(np.inf)) > high).all()
    config = WaveNetConfig(mel_channels=mel.n_mels, mel=mel, features=recipe)
    rng = np.random.default_rng(0)
    edges = [low32, high32, np.nextafter(low32, np.float32(-np.inf)),
             np.nextafter(high32, np.float32(np.inf))]
    frames = [rng.uniform(low, high).astype(np.float32) for _ in range(4)] + [
        e.astype(np.float32) for e in edges]
    nan = frames[0].copy()
    nan[3] = np.nan
    for frame in frames + [nan]:
        row = frame[None]
        fine = np.isfinite(row).all() and range_problem(row, config) is None
        assert within_range(row, config) == fine


def test_config_round_trip_and_old_configs():
    recipe = FeatureRecipe(kind="r9y9-master", highpass_cutoff=70.0, mean=(-3.0,) * 80,
                           scale=(0.8,) * 80)
    config = WaveNetConfig(mel_channels=80, sample_rate=SR, mel=R9Y9_MEL, features=recipe)
    assert WaveNetConfig.from_json(config.to_json()) == config
    plain = WaveNetConfig(mel_channels=80)
    assert "features" not in plain.to_dict()                # old files stay as they were
    assert WaveNetConfig.from_dict(plain.to_dict()).features == FeatureRecipe()


@pytest.mark.parametrize("kwargs,message", [
    (dict(kind="mine"), "kind must be one of"),
    (dict(kind="ours", min_level_db=-80.0), "takes no min_level_db"),
    (dict(kind="r9y9-master"), "needs mean and scale"),
    (dict(kind="r9y9-master", mean=(0.0,), scale=(0.0,)), "scale must be > 0"),
    (dict(kind="r9y9", stft="fft"), "stft must be one of"),
])
def test_bad_recipes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureRecipe(**kwargs)


def test_recipe_must_fit_the_mel_and_excitation_needs_a_natural_log():
    master = FeatureRecipe(kind="r9y9-master", mean=(0.0,) * 3, scale=(1.0,) * 3)
    with pytest.raises(ValueError, match="3 bands, the mel 80"):
        WaveNetConfig(mel_channels=80, features=master)
    with pytest.raises(ValueError, match="multiple of hop_length"):   # lws's own limit
        features(np.zeros(1000), SR, MelConfig(hop_length=300), FeatureRecipe(kind="r9y9"))
    with pytest.raises(ValueError, match="natural-log mel"):
        WaveNetConfig(mel_channels=80, excitation="lpc", features=FeatureRecipe(kind="r9y9"))
    WaveNetConfig(mel_channels=80, excitation="lpc", features=FeatureRecipe(kind="nvidia"))
