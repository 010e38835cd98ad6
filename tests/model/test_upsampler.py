"""The learned conditioning upsampler: torch's ConvTranspose2d + ReLU, and chunk invariant."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wavenet_core.model.upsampler import LearnedUpsampler, conditioning_window


def _random_upsampler(scales, kernel, seed=0):
    torch.manual_seed(seed)
    up = LearnedUpsampler(tuple(scales), kernel)
    with torch.no_grad():
        for p in up.parameters():
            p.copy_(torch.randn_like(p))
    return up


@settings(max_examples=20, deadline=None)
@given(scales=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       kernel=st.sampled_from([1, 3, 5]), channels=st.integers(1, 6), frames=st.integers(1, 7))
def test_equals_transposed_conv2d_and_relu(scales, kernel, channels, frames):
    up = _random_upsampler(scales, kernel)
    x = torch.randn(2, channels, frames)
    expected = x.unsqueeze(1)
    for stage, s in zip(up.stages, scales):
        conv = torch.nn.ConvTranspose2d(1, 1, (kernel, s), stride=(1, s),
                                        padding=((kernel - 1) // 2, 0))
        with torch.no_grad():
            conv.weight.copy_(stage.weight.view(1, 1, kernel, s))
            conv.bias.copy_(stage.bias)
            expected = torch.relu(conv(expected))
    with torch.no_grad():
        torch.testing.assert_close(up(x), expected.squeeze(1), rtol=0, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(scales=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       cuts=st.lists(st.integers(1, 30), min_size=1, max_size=5), frames=st.integers(1, 9))
def test_chunks_give_the_whole_mel_rows_bitwise(scales, cuts, frames):
    up, hop = _random_upsampler(scales, 3, seed=1), math.prod(scales)
    mel = np.random.default_rng(0).standard_normal((frames, 4)).astype(np.float32)
    total = frames * hop + 3                       # a few past the end: last frame repeats
    whole = conditioning_window(up, mel, hop, 0, total)
    with torch.no_grad():
        direct = up(torch.tensor(mel.T[None]))[0].T.numpy()
    np.testing.assert_array_equal(whole[:frames * hop], direct)
    # past the end the last frame repeats (as mel_window clamps): its rows again
    np.testing.assert_array_equal(whole[frames * hop:], np.tile(direct[-hop:], (3, 1))[:3])
    pieces, start = [], 0
    for cut in cuts * 10:
        if start >= total:
            break
        count = min(cut, total - start)
        pieces.append(conditioning_window(up, mel, hop, start, count))
        start += count
    if start < total:
        pieces.append(conditioning_window(up, mel, hop, start, total - start))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
