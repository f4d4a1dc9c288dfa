"""Int8 decoding (models/gpt_int8.py): accuracy against float32, bytes per token, error paths."""
import pytest
import torch

from aigc_course.models.gpt import GPT, GPTConfig
from aigc_course.models.gpt_int8 import Int8Linear, int8_decoder, weight_bytes_per_token

pytestmark = pytest.mark.skipif("fbgemm" not in torch.backends.quantized.supported_engines,
                                reason="FBGEMM int8 kernels exist on x86 CPUs only")


def test_int8_linear_error_within_the_quantization_bound():
    g = torch.Generator().manual_seed(0)
    w, b, x = torch.randn(96, 64, generator=g), torch.randn(96, generator=g), torch.randn(5, 64, generator=g)
    exact = x @ w.T + b
    got = Int8Linear(w, b)(x)
    # weights: per-row step max|W_r|/127, rounding error <= half a step per weight; activations: one uint8
    # step (range of x)/255 per row of x. Bound on |error| for output (i, r), first-order in both steps:
    w_step = w.abs().amax(1) / 127                                                  # (96,)
    x_step = (x.amax(1).clamp(min=0) - x.amin(1).clamp(max=0)) / 255               # (5,)
    bound = 0.5 * (x.abs().sum(1, keepdim=True) * w_step + x_step[:, None] * w.abs().sum(1)) * 1.05 + 1e-5
    assert ((got - exact).abs() <= bound).all()
    assert (got - exact).abs().max() > 0  # it really is quantized, not a float copy
    assert got.shape == (5, 96)


def test_int8_linear_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2-D"):
        Int8Linear(torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="8 features"):
        Int8Linear(torch.randn(4, 8))(torch.randn(2, 5))
    with pytest.raises(ValueError, match="aigc_course GPT"):
        int8_decoder(torch.nn.Linear(3, 3))


def test_int8_decoder_is_a_copy_and_reads_a_quarter_of_the_bytes():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=200, block_size=32, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = int8_decoder(model)
    assert model.lm_head is None and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # 2 blocks x (3 + 1 + 4 + 4) x 32^2 weights + 200 x 32 output layer, 4 bytes each in float32, 1 in int8
    n = 2 * 12 * 32 * 32 + 200 * 32
    assert weight_bytes_per_token(model) == 4 * n
    assert weight_bytes_per_token(q) == n
    x = torch.randint(0, 200, (2, 10))
    with torch.no_grad():
        ref, got = model(x)[0], q(x)[0]
    assert got.shape == ref.shape
    assert (got - ref).abs().max() < 0.05 * ref.abs().max()


def test_int8_gpt_char_agrees_with_float32_on_greedy_tokens_and_loss():
    """The shipped byte model: on a fixed prompt, int8 picks the float model's next byte at >= 97% of the
    positions of the float model's own greedy text, and its loss on that text moves by < 1%."""
    from aigc_course.models.hub import load_pretrained

    model, _ = load_pretrained("gpt_char")
    q = int8_decoder(model)
    prompt = torch.tensor([list(b"ROMEO:\nWhat say you to this, my lord?\n")])
    with torch.no_grad():
        text = model.generate(prompt, 80, greedy=True)  # 118 bytes: within the 128-byte context
        ref, got = model(text)[0], q(text)[0]
        ref_loss = torch.nn.functional.cross_entropy(ref[0, :-1], text[0, 1:])
        got_loss = torch.nn.functional.cross_entropy(got[0, :-1], text[0, 1:])
    agreement = (ref.argmax(-1) == got.argmax(-1)).float().mean().item()
    assert agreement >= 0.97, agreement
    assert abs(got_loss / ref_loss - 1) < 0.01
