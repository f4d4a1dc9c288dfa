import copy
import json

import pytest
import torch

from aigc_course import metrics
from aigc_course.core.assets import AssetError
from aigc_course.core.checkpoints import save_adapter, save_checkpoint
from aigc_course.data.digits import load_digits
from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.hub import load, load_checkpoint, load_pretrained
from aigc_course.models.lora import (LORA_ADAPTER, LoRAConfig, add_lora, lora_layers, lora_state_dict,
                                     trainable_parameters)
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


# --- one function for every checkpoint: load(name_or_path) ------------------------------------------------

def test_load_takes_a_path_or_a_shipped_name(saved, tmp_path, monkeypatch):
    model, path, _ = saved
    z = torch.randn(2, 4)
    by_path, _ = load(str(path))
    assert torch.equal(by_path.decode(z), model.decode(z))
    assert torch.equal(load(path.with_suffix(".json"))[0].decode(z), model.decode(z))  # the card's name works too
    monkeypatch.chdir(tmp_path)
    assert load("tiny")[1]["config"]["latent_dim"] == 4  # a bare name that exists here is a path
    shipped, card = load("vae_mlp2d")
    assert card["name"] == "vae_mlp2d" and shipped.latent_dim == 2


@pytest.mark.parametrize("what", ["no_such_model", "runs/no_such_model", ""])
def test_load_names_both_possibilities_when_neither_exists(what, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load(what)
    message = str(err.value)
    assert "as a path" in message and "as a shipped name" in message
    assert "vae_mlp2d" in message and "tang_lora" in message  # it lists what is shipped
    if what:
        assert f"{what}.json does not exist" in message


def test_load_reports_a_missing_file_of_a_shipped_checkpoint(data_copy):
    (data_copy / "checkpoints" / "tang_lora.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="tang_lora.safetensors is missing"):
        load("tang_lora")


# --- adapters: saved by core, applied to their base by the hub ---------------------------------------------

def tiny_gpt():
    return GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()


@pytest.fixture
def adapter(tmp_path):
    """A base checkpoint and a LoRA adapter for it (B random, so the adapter changes the outputs)."""
    torch.manual_seed(0)
    base = tiny_gpt()
    save_checkpoint(base, tmp_path / "base", {})
    adapted = add_lora(copy.deepcopy(base), LoRAConfig(rank=2, alpha=4))
    for name, p in adapted.named_parameters():
        if name.endswith("lora_b"):
            torch.nn.init.normal_(p)
    card_path = save_adapter(lora_state_dict(adapted), tmp_path / "adapter",
                             {"kind": LORA_ADAPTER, "base": str(tmp_path / "base"),
                              "lora": {"rank": 2, "alpha": 4, "targets": ["attn.c_attn", "attn.c_proj"]},
                              "metrics": {"x": 1.0}})
    return base, adapted, tmp_path / "adapter", card_path


def test_adapter_card_follows_the_checkpoint_conventions(adapter):
    _, _, path, card_path = adapter
    card = json.loads(card_path.read_text())
    assert card["kind"] == "LoRAAdapter" and card["name"] == "adapter" and card["metrics"] == {"x": 1.0}
    assert card["weights"] == "adapter.safetensors"
    # 2 layers x (c_attn: A 2x16 + B 48x2, c_proj: A 2x16 + B 16x2) = 2 x (128 + 64)
    assert card["parameters"] == 384
    assert len(card["weights_sha256"]) == 64
    with pytest.raises(ValueError, match="needs base"):
        save_adapter({"w": torch.zeros(1)}, path.with_name("x"), {"kind": LORA_ADAPTER})


def test_adapter_loads_merged_or_attached_onto_its_base(adapter):
    base, adapted, path, _ = adapter
    x = torch.randint(0, 50, (2, 10))
    with torch.no_grad():
        expected, plain = adapted(x)[0], base(x)[0]
        merged, card = load(path)
        attached, _ = load(path, merge=False)
        assert (expected - plain).abs().max() > 1e-2  # the adapter really changes the model
        assert torch.allclose(merged(x)[0], expected, atol=1e-5)
        assert torch.allclose(attached(x)[0], expected, atol=1e-5)
    assert card["base"] == str(path.with_name("base"))
    assert all(layer.merged for layer in lora_layers(merged)) and len(lora_layers(merged)) == 4
    assert not any(layer.merged for layer in lora_layers(attached))
    assert trainable_parameters(attached) == 384


def test_adapter_errors(adapter):
    _, _, path, card_path = adapter
    card = json.loads(card_path.read_text())
    other = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    save_checkpoint(other, path.with_name("wide_base"), {})
    card_path.write_text(json.dumps(card | {"base": str(path.with_name("wide_base"))}))
    with pytest.raises(ValueError, match="does not fit base"):
        load(path)
    card_path.write_text(json.dumps(card | {"base": str(path.with_name("gone"))}))
    with pytest.raises(FileNotFoundError, match="gone.json does not exist"):
        load(path)
    weights = path.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(AssetError, match="corrupted"):
        load(path)


def test_shipped_lora_adapter_loads_onto_gpt_char():
    tang, card = load("tang_lora", merge=False)
    base, _ = load("gpt_char")
    assert card["kind"] == "LoRAAdapter" and card["base"] == "gpt_char"
    # rank 8 on c_attn (A 8x128, B 384x8) and c_proj (A 8x128, B 128x8) in 4 layers
    assert trainable_parameters(tang) == 4 * (8 * 128 + 384 * 8 + 8 * 128 + 128 * 8) == card["parameters"]
    x = torch.tensor([list("床前明月光".encode())])
    with torch.no_grad():
        attached = tang(x)[0]
        merged = load("tang_lora")[0](x)[0]
        assert torch.allclose(attached, merged, atol=1e-4)
        assert (merged - base(x)[0]).abs().max() > 0.1
