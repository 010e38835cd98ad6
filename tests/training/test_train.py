"""Training runs, lowers the loss, checkpoints, logs, and resumes from its files."""

import dataclasses
import json

import pytest
import torch

from tests.helpers.mel import upsample_mel
from tests.helpers.tiny_models import TINY_TRAINING
from wavenet_cli.main import main as cli_main
from wavenet_core import load_checkpoint
from wavenet_core.audio.mel import mel_window
from wavenet_core.model.checkpoint import read_metadata
from wavenet_core.model.config import WaveNetConfig
from wavenet_core.training.data import load_utterances, mel_statistics, sample_batch
from wavenet_core.training.train import (
    TrainSettings,
    train,
    training_utterances,
    use_bfloat16,
)

TINY = TINY_TRAINING


def test_mel_window_equals_whole_utterance_upsampling(tiny_corpus):
    import numpy as np

    utt = load_utterances(tiny_corpus, "train", TINY, pad=TINY.receptive_field, limit=1)[0]
    whole = upsample_mel(utt.mel, 64, len(utt.codes))
    for first, count in ((0, 100), (37, 500), (64, 64), (len(utt.codes) - 300, 300)):
        np.testing.assert_allclose(mel_window(utt.mel, 64, first, count),
                                   whole[first:first + count], rtol=0, atol=1e-6)


def test_batches_align_inputs_targets_and_mel(tiny_corpus):
    import numpy as np

    utts = load_utterances(tiny_corpus, "train", TINY, pad=TINY.receptive_field)
    batch = sample_batch(utts, TINY, 3, 50, np.random.default_rng(1))
    field = TINY.receptive_field
    assert batch.inputs.shape == (3, field - 1 + 50)
    assert batch.targets.shape == (3, 50)
    assert batch.local.shape == (3, 20, field - 1 + 50)
    # targets continue the inputs: the last input is the sample before the last target
    assert (batch.inputs[:, field:] == batch.targets[:, :-1]).all()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_lowers_loss_checkpoints_and_resumes(tiny_corpus, tmp_path, precision):
    settings = TrainSettings(corpus=str(tiny_corpus), out_dir=str(tmp_path / "run"), steps=30,
                             batch_size=4, window=200, lr=1e-2, warmup=5, checkpoint_every=15,
                             valid_every=15, valid_windows=8, precision=precision)
    path = train(TINY, settings, speakers=["s0", "s1"], progress=False)
    lines = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 30
    assert sum(r["loss"] for r in records[-5:]) / 5 < records[0]["loss"] - 0.5
    assert "valid_bits" in records[14] and "valid_bits" in records[-1]
    model = load_checkpoint(path)
    # the config is TINY plus the log-mel standardisation measured on the training split
    mean, std = mel_statistics(load_utterances(tiny_corpus, "train", TINY, TINY.receptive_field))
    assert std > 0.5 and model.config.mel_mean == pytest.approx(mean)
    assert model.config == dataclasses.replace(TINY, mel_mean=model.config.mel_mean,
                                               mel_std=model.config.mel_std)
    assert model.config.mel_std == pytest.approx(std)
    # resume continues from step 30 to 40 and appends to the log
    settings.steps = 40
    train(TINY, settings, resume=True, progress=False)
    records = (tmp_path / "run/metrics.jsonl").read_text().splitlines()
    assert len(records) == 40 and json.loads(records[-1])["step"] == 40
    resumed = load_checkpoint(path)
    assert not torch.equal(resumed.logits_1x1.weight, model.logits_1x1.weight)


def test_train_command(tiny_corpus, tmp_path):
    code = cli_main(["train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "cli"),
                     "--layers-per-stack", "3", "--stacks", "1", "--residual-channels", "6",
                     "--skip-channels", "8", "--speakers", "--steps", "3", "--batch-size", "2",
                     "--window", "100", "--valid-windows", "2"])
    assert code == 0
    model = load_checkpoint(tmp_path / "cli/model.safetensors")
    assert model.config.num_speakers == 2 and model.config.mel_channels == 0


def test_precision_setting_is_checked():
    assert use_bfloat16("fp32") is False and use_bfloat16("bf16") is True
    assert isinstance(use_bfloat16("auto"), bool)
    assert isinstance(use_bfloat16("auto", torch.device("cpu")), bool)
    # auto: native bf16 only (an AVX-512 CPU without it emulates bf16, 2.8x slower)
    cpu = torch.device("cpu")
    assert use_bfloat16("auto", cpu, frozenset({"avx512f", "avx512bw", "avx512_vnni"})) is False
    assert use_bfloat16("auto", cpu, frozenset({"avx512f", "avx512_bf16"})) is True
    assert use_bfloat16("auto", cpu, frozenset({"amx_tile", "amx_bf16"})) is True
    assert use_bfloat16("bf16", cpu, frozenset()) is True
    with pytest.raises(ValueError, match="precision"):
        use_bfloat16("fp16")


def test_train_command_with_a_conditioning_network(tiny_corpus, tmp_path):
    small = ["--layers-per-stack", "3", "--stacks", "1", "--residual-channels", "6",
             "--skip-channels", "8", "--steps", "2", "--batch-size", "2", "--window", "100",
             "--valid-windows", "2", "--hop-length", "64"]
    base = ["train", "--corpus", str(tiny_corpus)]
    assert cli_main(base + ["--out", str(tmp_path / "c"), "--mel", "--cond-layers", "1",
                            *small]) == 0
    model = load_checkpoint(tmp_path / "c/model.safetensors")
    assert model.config.cond_layers == 1 and model.config.mel_std != 1.0
    assert model.cond_net.mel_std == model.config.mel_std
    # from a plain checkpoint: a network is added (the identity), then trained
    assert cli_main(base + ["--out", str(tmp_path / "p"), "--mel", *small]) == 0
    assert cli_main(base + ["--out", str(tmp_path / "pc"), "--cond-layers", "2", "--init-from",
                            str(tmp_path / "p/model.safetensors"), *small]) == 0
    added = load_checkpoint(tmp_path / "pc/model.safetensors")
    assert added.config.cond_layers == 2
    assert added.config.mel_mean == load_checkpoint(tmp_path / "p/model.safetensors") \
        .config.mel_mean
    with pytest.raises(SystemExit, match="--mel"):
        cli_main(base + ["--out", str(tmp_path / "x"), "--cond-layers", "1", *small])


def test_with_cond_net_adds_the_identity():
    import numpy as np

    from tests.helpers.models import random_model
    from wavenet_core.model.transfer import with_cond_net

    model = random_model(dataclasses.replace(TINY, num_speakers=0, mel_mean=-4.0, mel_std=2.0))
    added = with_cond_net(model, 2)
    mel = np.random.default_rng(0).normal(-4, 2, (9, 20)).astype(np.float32)
    assert np.array_equal(added.cond_net.condition_mel(mel), mel)
    for name, value in model.state_dict().items():
        assert torch.equal(added.state_dict()[name], value)
    with pytest.raises(ValueError, match="already"):
        with_cond_net(added, 1)



def test_training_optimizer_is_torch_adam_and_resumes_its_files(tmp_path):
    """make_optimizer (fused Adam) steps as torch's default Adam does, and an optimizer
    file written by either resumes the other: the runs begun before it keep resuming."""
    import copy

    from tests.helpers.models import random_model
    from wavenet_core.training.train import load_optimizer, make_optimizer, save_optimizer

    config = WaveNetConfig(layers_per_stack=2, stacks=1, residual_channels=4, skip_channels=6)
    made_model = random_model(config, seed=0)
    default_model = copy.deepcopy(made_model)
    made = make_optimizer(made_model, 1e-2)
    assert made.param_groups[0]["fused"]
    default = torch.optim.Adam(default_model.parameters(), lr=1e-2)

    def step(pairs, seed):
        for i in range(3):
            gen = torch.Generator().manual_seed(seed + i)
            grads = [torch.randn(p.shape, generator=gen) for p in made_model.parameters()]
            for model, optimizer in pairs:
                for p, g in zip(model.parameters(), grads):
                    p.grad = g.clone()
                optimizer.step()

    def assert_same(a, b):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)

    step([(made_model, made), (default_model, default)], 0)
    assert_same(made_model, default_model)
    save_optimizer(tmp_path / "made.safetensors", made, 3)
    save_optimizer(tmp_path / "default.safetensors", default, 3)
    # each file resumes into the other kind; both go on as the optimizers that wrote them
    from_default, from_made = copy.deepcopy(default_model), copy.deepcopy(made_model)
    resumed = [make_optimizer(from_default, 1e-2),
               torch.optim.Adam(from_made.parameters(), lr=1e-2)]
    load_optimizer(tmp_path / "default.safetensors", resumed[0])
    load_optimizer(tmp_path / "made.safetensors", resumed[1])
    step([(made_model, made), (default_model, default), (from_default, resumed[0]),
          (from_made, resumed[1])], 10)
    assert_same(from_default, default_model)
    assert_same(from_made, made_model)


def test_add_corpus_joins_the_training_split_only(tiny_corpus, tmp_path):
    universal = dataclasses.replace(TINY, num_speakers=0)
    pad = universal.receptive_field
    one = load_utterances(tiny_corpus, "train", universal, pad)
    settings = TrainSettings(corpus=str(tiny_corpus), out_dir="", add_corpus=(str(tiny_corpus),))
    both = training_utterances(settings, universal, pad)
    assert len(both) == 2 * len(one)
    assert all((a.codes == b.codes).all() for a, b in zip(both, one + one))
    with pytest.raises(ValueError, match="speaker"):
        training_utterances(settings, TINY, pad)      # speaker ids would mix
    out = tmp_path / "run"
    assert cli_main(["train", "--corpus", str(tiny_corpus), "--add-corpus", str(tiny_corpus),
                     "--out", str(out), "--mel", "--layers-per-stack", "2", "--stacks", "1",
                     "--residual-channels", "4", "--skip-channels", "6", "--steps", "2",
                     "--batch-size", "2", "--window", "100", "--valid-windows", "2",
                     "--hop-length", "64"]) == 0
    meta = read_metadata(out / "model.safetensors")
    assert json.loads(meta["train_settings"])["add_corpus"] == [str(tiny_corpus)]
