import json

import pytest
import torch

from aigc_course import metrics
from aigc_course.core.assets import AssetError
from aigc_course.core.checkpoints import save_checkpoint
from aigc_course.models.hub import load_checkpoint, load_pretrained
from aigc_course.data.digits import load_digits
from aigc_course.models.vae import VAE, VAEConfig


@pytest.fixture
def saved(tmp_path):
    model = VAE(VAEConfig(arch="conv", latent_dim=4, hidden=32))
    card = save_checkpoint(model, tmp_path / "tiny", {"metrics": {"x": 1.0}, "command": "test", "seed": 0})
    return model, tmp_path / "tiny", card


def test_round_trip_gives_identical_outputs_and_card(saved):
    model, path, card_path = saved
    loaded, card = load_checkpoint(path)
    z = torch.randn(2, 4)
    assert torch.equal(model.decode(z), loaded.decode(z))
    assert card["kind"] == "VAE" and card["config"]["latent_dim"] == 4
    assert card["command"] == "test" and card["parameters"] == sum(p.numel() for p in model.parameters())
    assert json.loads(card_path.read_text())["weights_sha256"] == card["weights_sha256"]


def test_corrupted_and_truncated_weights_are_rejected(saved):
    _, path, _ = saved
    weights = path.with_suffix(".safetensors")
    raw = weights.read_bytes()
    weights.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AssetError, match="corrupted"):
        load_checkpoint(path)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        load_checkpoint(path)


def test_missing_or_broken_card(saved):
    _, path, card_path = saved
    card_path.write_text("{not json")
    with pytest.raises(AssetError, match="not valid JSON"):
        load_checkpoint(path)
    card_path.unlink()
    with pytest.raises(FileNotFoundError, match="model card"):
        load_checkpoint(path)


@pytest.mark.parametrize("name,latent", [("vae_mlp2d", 2), ("vae_conv16", 16)])
def test_shipped_checkpoints_load_and_match_their_cards(name, latent):
    model, card = load_pretrained(name)
    assert model.latent_dim == latent and not model.training
    assert "python -m aigc_course train vae" in card["command"]
    # The card's test metric is reproducible from the shipped weights and data.
    measured = metrics.negative_elbo(model, load_digits("test"))
    assert measured == pytest.approx(card["metrics"]["test_neg_elbo"], abs=0.02)


def test_load_pretrained_reports_a_damaged_shipped_checkpoint(data_copy):
    weights = data_copy / "checkpoints" / "vae_mlp2d.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(AssetError, match="git checkout -- data/"):
        load_pretrained("vae_mlp2d")
