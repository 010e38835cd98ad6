"""Import an r9y9 wavenet_vocoder checkpoint (.pth) as this project's checkpoint (format 2).

Why a converter and not their code: checkpoints here never unpickle, and every backend
runs one documented layout. The .pth is read with `torch.load(weights_only=True)`, which
only rebuilds tensors and plain containers; a file that needs any other class is refused.

The architecture comes from the tensor shapes (layers, widths, kernel, conditioning,
upsampler, input and output) plus what shapes cannot say, from an r9y9 hparams JSON
(`--hparams`, their preset format) or, without one, their LJSpeech preset's values
(`R9Y9_DEFAULTS`). Folded exactly (one product or sum per weight, no approximation):
weight normalization (w = g * v / |v|, per output channel); the one-hot first 1x1's bias
(into each embedding row); the conditioning 1x1s' biases (into the dilated conv's bias);
the running skip scaling `skips = (skips + h) * sqrt(0.5)` of `legacy=True` (into layer
i's skip 1x1 as sqrt(0.5) ** (L - max(i, 1))). The residual's sqrt(0.5) stays a scale
(`residual_scale`): folding it would rescale every layer's inputs. The feature recipe
(which formula made their mels) comes from the hparams and meanvar file (r9y9_features.py).
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import torch

from wavenet_core.interop.r9y9_features import FeaturesError, r9y9_recipe
from wavenet_core.model.checkpoint import save_checkpoint
from wavenet_core.model.config import MelConfig, WaveNetConfig
from wavenet_core.model.wavenet import WaveNet

R9Y9_DEFAULTS = {"stacks": 4, "legacy": True, "log_scale_min": math.log(1e-14),
                 "sample_rate": 22050, "hop_size": 256, "fft_size": 1024, "win_length": None,
                 "fmin": 125.0, "fmax": 7600.0, "output_distribution": None}
"""What the shapes cannot say, as in r9y9's LJSpeech mixture-of-logistics preset."""


class ConvertError(ValueError):
    """The file cannot be converted; the message says why."""


def read_pth(path) -> dict[str, torch.Tensor]:
    """The state dict of an r9y9 checkpoint, without unpickling anything but tensors."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise ConvertError(
            f"{path}: refused: reading it needs arbitrary unpickling, which can run code "
            f"(torch.load weights_only=True said: {str(exc).splitlines()[0]}). If you trust "
            f"the file, re-save just its state dict: torch.save(torch.load(IN, "
            f"weights_only=False)['state_dict'], OUT)") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ConvertError(f"{path}: no state dict of tensors (a dict, or one under "
                           f"'state_dict')")
    return {k.removeprefix("module."): v.float() for k, v in state.items()}


def _weight(state: dict, name: str) -> torch.Tensor:
    """`name`'s weight, weight normalization folded (torch's weight_norm, dim 0)."""
    if name + ".weight" in state:
        return state[name + ".weight"]
    try:
        return torch._weight_norm(state[name + ".weight_v"], state[name + ".weight_g"], 0)
    except KeyError:
        raise ConvertError(f"missing tensor {name}.weight (or weight_g/weight_v)") from None


def r9y9_config(state: dict, hparams: dict | None = None, meanvar=None,
                trust_pickle: bool = False) -> tuple[WaveNetConfig, bool]:
    """The WaveNetConfig of an r9y9 state dict, and its `legacy` flag."""
    hp = {**R9Y9_DEFAULTS, **(hparams or {})}
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("conv_layers."))
    conv = _weight(state, "conv_layers.0.conv")                      # [2G, C, k]
    first = _weight(state, "first_conv")                             # [C, in, 1]
    out = _weight(state, "last_conv_layers.3")                       # [out, S, 1]
    stacks = int(hp["stacks"])
    if layers % stacks:
        raise ConvertError(f"{layers} layers do not split into {stacks} stacks (--hparams)")
    scalar = first.size(1) == 1
    output = "softmax"
    if scalar:
        kind = hp["output_distribution"] or ("Logistic" if out.size(0) % 3 == 0 else "Normal")
        output = {"Logistic": "mol", "Normal": "gaussian"}.get(kind)
        if output is None or (output == "gaussian") != (out.size(0) == 2):
            raise ConvertError(f"output_distribution {kind!r} with {out.size(0)} outputs")
    cin = (_weight(state, "conv_layers.0.conv1x1c").size(1)
           if any(k.startswith("conv_layers.0.conv1x1c.") for k in state) else 0)
    has_g = any(k.startswith("conv_layers.0.conv1x1g.") for k in state)
    if has_g and "embed_speakers.weight" not in state:
        raise ConvertError("global conditioning without a speaker embedding "
                           "(use_speaker_embedding=False) is not supported")
    speakers = state["embed_speakers.weight"] if has_g else None
    stages = sorted({int(k.split(".")[1]) for k in state if k.startswith("upsample_conv.")})
    shapes = [_weight(state, f"upsample_conv.{i}").shape for i in stages]
    if cin and not shapes:
        raise ConvertError("local conditioning without the learned upsampler "
                           "(upsample_conditional_features=False) is not supported")
    scales = tuple(int(s[3]) for s in shapes)
    hop = math.prod(scales) if scales else int(hp["hop_size"])
    mel = MelConfig(n_mels=cin or 80, n_fft=int(hp["fft_size"]),
                    win_length=int(hp["win_length"] or hp["fft_size"]), hop_length=hop,
                    fmin=float(hp["fmin"] or 0.0), fmax=float(hp["fmax"] or 0.0))
    features = r9y9_recipe(hparams, meanvar, trust_pickle, mel.n_mels) if cin else None
    config = WaveNetConfig(
        layers_per_stack=layers // stacks, stacks=stacks, residual_channels=first.size(0),
        skip_channels=out.size(1), classes=256 if scalar else out.size(0),
        sample_rate=int(hp["sample_rate"]), mel_channels=cin,
        num_speakers=0 if speakers is None else speakers.size(0),
        speaker_channels=16 if speakers is None else speakers.size(1), mel=mel,
        kernel_size=conv.size(2), gate_channels=conv.size(0) // 2, out_bias=True,
        residual_scale=math.sqrt(0.5), input_kind="scalar" if scalar else "embedding",
        output=output, mixtures=out.size(0) // 3 if output == "mol" else 0,
        log_scale_min=float(hp["log_scale_min"]), upsample_scales=scales,
        upsample_freq_kernel=int(shapes[0][2]) if shapes else 3,
        **({"features": features} if features else {}))
    return config, bool(hp["legacy"])


def _halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """r9y9's gate output: the first half feeds tanh, the second sigmoid."""
    half = t.size(0) // 2
    return t[:half], t[half:]


def r9y9_tensors(state: dict, config: WaveNetConfig, legacy: bool) -> dict[str, torch.Tensor]:
    """Our tensors (docs/checkpoint-format.md) from an r9y9 state dict, everything folded."""
    out, c = {}, config
    first, first_b = _weight(state, "first_conv"), state["first_conv.bias"]
    if c.scalar_io:
        out["input_1x1.weight"], out["input_1x1.bias"] = first, first_b
    else:                               # one-hot @ W + b: row k is W[:, k] + b
        out["embedding.weight"] = first[:, :, 0].T + first_b
    if c.global_conditioning:
        out["speaker_embedding.weight"] = state["embed_speakers.weight"]
    for i, stage in enumerate(range(0, 2 * len(c.upsample_scales), 2)):   # ReLUs between
        out[f"upsampler.stages.{i}.weight"] = _weight(state, f"upsample_conv.{stage}")[0, 0]
        out[f"upsampler.stages.{i}.bias"] = state[f"upsample_conv.{stage}.bias"]
    layers = c.num_layers
    for i in range(layers):
        src, dst = f"conv_layers.{i}.", f"layers.{i}."
        bias = state[src + "conv.bias"].clone()
        for cond, ours in (("conv1x1c", "local"), ("conv1x1g", "global")):
            if src + cond + ".bias" in state:
                bias += state[src + cond + ".bias"]
                w_f, w_g = _halves(_weight(state, src + cond))
                out[dst + f"filter_{ours}.weight"], out[dst + f"gate_{ours}.weight"] = w_f, w_g
        out[dst + "filter_conv.weight"], out[dst + "gate_conv.weight"] = _halves(
            _weight(state, src + "conv"))
        out[dst + "filter_conv.bias"], out[dst + "gate_conv.bias"] = _halves(bias)
        out[dst + "residual_1x1.weight"] = _weight(state, src + "conv1x1_out")
        out[dst + "residual_1x1.bias"] = state[src + "conv1x1_out.bias"]
        factor = math.sqrt(0.5) ** (layers - max(i, 1)) if legacy else 1.0
        out[dst + "skip_1x1.weight"] = _weight(state, src + "conv1x1_skip") * factor
        out[dst + "skip_1x1.bias"] = state[src + "conv1x1_skip.bias"] * factor
    for ours, theirs in (("head_1x1", "last_conv_layers.1"), ("logits_1x1", "last_conv_layers.3")):
        out[ours + ".weight"], out[ours + ".bias"] = _weight(state, theirs), state[theirs + ".bias"]
    return {k: v.detach().contiguous() for k, v in out.items()}


def convert_r9y9(src, dst, hparams_path=None, meanvar=None,
                 trust_pickle: bool = False) -> WaveNet:
    """Read an r9y9 .pth (and optional hparams JSON and, for master features, their meanvar
    file), write our checkpoint; returns the model."""
    hparams = None
    if hparams_path is not None:
        try:
            hparams = json.loads(Path(hparams_path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConvertError(f"{hparams_path}: not a readable JSON hparams file "
                               f"({exc})") from None
    state = read_pth(src)
    try:
        config, legacy = r9y9_config(state, hparams, meanvar, trust_pickle)
        model = WaveNet(config)
        model.load_state_dict(r9y9_tensors(state, config, legacy))
    except (KeyError, ValueError, RuntimeError) as exc:
        if isinstance(exc, FeaturesError):
            raise ConvertError(str(exc)) from None
        if isinstance(exc, ConvertError):
            raise ConvertError(f"{src}: {exc}") from None
        raise ConvertError(f"{src}: not an r9y9 wavenet_vocoder state dict this converter "
                           f"understands ({exc})") from None
    save_checkpoint(dst, model.eval(), {"converted_from": "r9y9 wavenet_vocoder",
                                        "source": Path(src).name})
    return model
