"""GPT-2 and Hugging Face ``transformers``: the same weights, two module layouts.

Our :class:`~aigc_course.models.gpt.GPT` names its parameters as Hugging Face's
``GPT2LMHeadModel`` does (``transformer.h.0.attn.c_attn.weight`` ...), so the
mapping is one rule: ``transformers`` keeps the four projection matrices of a
block as ``Conv1D`` with shape (in, out), computing x @ W + b, while
``nn.Linear`` keeps (out, in) and computes x @ W^T + b; those four are
transposed, everything else is copied. The same random weights give the same
logits to 1e-4 (tests/test_gpt.py) for a small config and the full 124M one.

    hf = to_hf(model)                          # a transformers.GPT2LMHeadModel with our weights
    model = from_hf(hf)                        # and back
    model = load_gpt2_weights("path/to/gpt2")  # real GPT-2 weights you already have on disk

``transformers`` is needed only by :func:`to_hf`; the course never downloads
GPT-2's weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from aigc_course.models.gpt import GPT, GPTConfig

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def config_from_hf(hf_config) -> GPTConfig:
    """Our GPTConfig from a ``transformers.GPT2Config`` (or its dict)."""
    get = hf_config.get if isinstance(hf_config, dict) else lambda k, d=None: getattr(hf_config, k, d)
    return GPTConfig(vocab_size=get("vocab_size"), block_size=get("n_positions"), n_layer=get("n_layer"),
                     n_head=get("n_head"), n_embd=get("n_embd"), layer_norm_eps=get("layer_norm_epsilon", 1e-5))


def state_dict_from_hf(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict onto ours: transpose the Conv1D weights.

    Hugging Face's ``Conv1D`` computes x @ W + b with W of shape (in, out);
    ``nn.Linear`` computes x @ W^T + b with W (out, in). Attention-mask buffers
    (``attn.bias``, ``attn.masked_bias`` in older versions) are dropped: we build the mask on the fly.
    """
    out = {}
    for key, value in hf_state.items():
        if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
            continue  # lm_head.weight is the (tied) token embedding
        name = key if key.startswith(("transformer.", "lm_head.")) else f"transformer.{key}"
        out[name] = value.t().contiguous() if name.endswith(_CONV1D) else value
    return out


def from_hf(hf_model) -> GPT:
    """Our GPT with the weights of a ``transformers.GPT2LMHeadModel``."""
    model = GPT(config_from_hf(hf_model.config))
    model.load_state_dict(state_dict_from_hf(hf_model.state_dict()))
    return model.eval()


def to_hf(model: GPT):
    """A ``transformers.GPT2LMHeadModel`` with our weights (needs the ``transformers`` package)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
                                    n_layer=c.n_layer, n_head=c.n_head, layer_norm_epsilon=c.layer_norm_eps,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    activation_function="gelu_new"))
    state = {k: (v.t().contiguous() if k.endswith(_CONV1D) else v) for k, v in model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    hf.tie_weights()
    if unexpected or any(not k.endswith((".attn.bias", ".attn.masked_bias", "lm_head.weight")) for k in missing):
        raise ValueError(f"weight names do not match GPT2LMHeadModel: missing {missing}, unexpected {unexpected}")
    return hf.eval()


def load_gpt2_weights(path: str | Path) -> GPT:
    """Load real GPT-2 weights you already have: a Hugging Face folder or a ``.safetensors`` file.

    ``path`` may be a folder saved by ``save_pretrained`` (``config.json`` plus
    ``model.safetensors`` or ``pytorch_model.bin``) or a single safetensors file
    (with a ``config.json`` next to it, else the 124M shape is assumed).
    The course never downloads GPT-2's weights (about 500 MB): get them
    yourself, e.g. with ``huggingface-cli download gpt2`` on a machine with
    network access, and point this function at the folder.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. The course never downloads GPT-2's weights; "
                                "download them yourself (e.g. `huggingface-cli download gpt2 --local-dir DIR`) "
                                "and pass that folder or its model.safetensors")
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        candidates = [path / "model.safetensors", path / "pytorch_model.bin"]
        weights = next((c for c in candidates if c.exists()), None)
        if weights is None:
            raise FileNotFoundError(f"{path} holds neither model.safetensors nor pytorch_model.bin: "
                                    "point at a folder written by save_pretrained / huggingface-cli download")
    else:
        weights = path
    config_file = folder / "config.json"
    config = config_from_hf(json.loads(config_file.read_text())) if config_file.exists() else GPTConfig()
    if weights.suffix == ".safetensors":
        state = load_file(weights)
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    model = GPT(config)
    try:
        model.load_state_dict(state_dict_from_hf(state))
    except (RuntimeError, KeyError) as err:
        raise ValueError(f"{weights} does not hold GPT-2 weights matching {config}: {err}") from err
    return model.eval()
