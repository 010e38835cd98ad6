"""A real `wavenet serve` refuses a checkpoint with a conditioning network (`cond_layers`,
wavenet_core/condnet.py): its mel streaming does not run the network yet, so rather than
stream audio from unconditioned frames the model fails to load with an error that names
the option, and requests for it are refused; the other models serve as before."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.server import MEL, SMALL, Server, make_checkpoints
from wavenet_core import MelConfig, WaveNet, WaveNetConfig, save_checkpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = make_checkpoints(tmp_path_factory.mktemp("condnet"), damaged=False)
    config = WaveNetConfig(**SMALL, mel_channels=MEL["n_mels"], mel=MelConfig(**MEL),
                           cond_layers=2)
    save_checkpoint(folder / "cond.safetensors", WaveNet(config))
    srv = Server.ready(folder, {"WAVENET_BACKEND": "torch"}, folder / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def test_cond_model_fails_to_load_naming_the_option(server):
    models = {m["name"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert models["mel"]["status"] == "ready"
    assert models["cond"]["status"] == "failed"
    error = models["cond"]["error"]
    assert "cond_layers=2" in error and "cond.safetensors" in error, error
    assert "/" not in error.split(":")[0]


def test_requests_for_it_are_refused_and_others_served(server):
    r = httpx.post(server.url + "/v1/synthesize",
                   json={"model": "cond", "mel": [[-5.0] * MEL["n_mels"]] * 4, "format": "pcm"},
                   timeout=60)
    assert r.status_code == 503, r.text
    r = httpx.post(server.url + "/v1/synthesize",
                   json={"model": "mel", "mel": [[-5.0] * MEL["n_mels"]] * 4, "format": "pcm"},
                   timeout=60)
    assert r.status_code == 200 and len(r.content) == 2 * 4 * MEL["hop_length"]


def test_the_runner_itself_refuses_a_cond_config():
    from server.runner import Runner

    config = WaveNetConfig(**SMALL, mel_channels=4, cond_layers=1)
    with pytest.raises(ValueError, match="cond_layers=1"):
        Runner("cond", None, config, 2)
