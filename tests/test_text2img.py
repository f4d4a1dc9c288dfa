"""Lesson 08: attributes, captions, the prompt tokenizer, tiny CLIP, cross-attention, latent diffusion, the CLI."""
import math
import random

import pytest
import torch

from aigc_course.core import i18n
from aigc_course.data import attributes as A
from aigc_course.data import captions as C
from aigc_course.data.prompts import END, MAX_TOKENS, PAD, START, PromptTokenizer
from aigc_course.models.clip import ClipConfig, TinyCLIP, clip_loss, recall_at_k
from aigc_course.models.latent_diffusion import (AutoencoderConfig, Condition, CrossAttention, LatentAutoencoder,
                                                 TextUNet, TextUNetConfig, sdedit_start)


# --------------------------------------------------------------------------- measuring digits

def _canvas():
    return torch.zeros(1, 28, 28)


def test_thickness_is_twice_the_area_over_the_edges():
    bar = _canvas()
    bar[0, 5:23, 10:13] = 1.0                       # 18 x 3: area 54, edges 2 * (18 + 3) = 42
    assert A.thickness(bar).item() == pytest.approx(2 * 54 / 42)
    wide = _canvas()
    wide[0, 5:23, 10:15] = 1.0                      # 18 x 5: 2 * 90 / 46
    assert A.thickness(wide).item() == pytest.approx(2 * 90 / 46)
    assert A.thickness(_canvas()).item() == 0.0     # no ink, no crash


def test_slant_of_a_sheared_line_is_its_shear():
    img = _canvas()
    for y in range(4, 24):                          # top leans right: x grows as y (down) shrinks
        img[0, y, round(14 + 0.5 * (14 - y))] = 1.0
    assert A.slant(img).item() == pytest.approx(0.5, abs=0.03)
    upright = _canvas()
    upright[0, 4:24, 14] = 1.0
    assert A.slant(upright).item() == pytest.approx(0.0, abs=1e-6)
    assert A.slant(img.flip(-1)).item() == pytest.approx(-0.5, abs=0.03)   # mirrored: leans left


def test_size_is_the_bounding_box_area_and_levels_cut_at_the_thresholds():
    box = _canvas()
    box[0, 3:13, 5:11] = 1.0                        # 10 rows x 6 columns
    box[0, 7, 20] = 0.4                             # below the ink threshold: not counted
    assert A.size(box).item() == 60.0
    assert A.size(_canvas()).item() == 0.0
    low, high = A.THRESHOLDS["size"]
    values = torch.tensor([low - 1, low, low + 1, high, high + 1])
    assert A.to_levels(values, "size").tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(ValueError, match="expected digit images"):
        A.thickness(torch.zeros(2, 3, 28, 28))


def test_the_thresholds_are_the_training_digits_terciles():
    from aigc_course.data.digits import load_digits

    train = load_digits("train")
    levels = A.attributes_of(train.x, train.labels)
    for attribute in A.ATTRIBUTES:
        share = torch.bincount(getattr(levels, attribute), minlength=3).float() / len(train)
        assert share.min() > 0.25 and share.max() < 0.42, (attribute, share)   # three levels of about a third


# --------------------------------------------------------------------------- captions and tokenizer

ROW = {"digit": 7, "thickness": 0, "slant": 2, "size": 1}


def test_full_captions_in_both_languages():
    rng = random.Random(0)
    assert C.caption(ROW, "en", rng, full=True) == "a thin seven leaning right"
    assert C.caption(ROW, "zh", rng, full=True) == "一个细向右倾斜的 7"
    assert C.caption({"digit": 8, "thickness": 2, "slant": 1, "size": 2}, "en", rng, full=True) == "a large bold eight"
    assert C.caption({"digit": 3, "thickness": 1, "slant": 1, "size": 1}, "zh", rng, full=True) == "一个 3"
    with pytest.raises(ValueError, match="language"):
        C.caption(ROW, "fr", rng)


def test_every_random_caption_reads_back_as_its_digit_and_attributes():
    tokenizer, rng = PromptTokenizer(), random.Random(1)
    phrasings = set()
    for i in range(400):
        row = {"digit": i % 10, **{a: rng.randrange(3) for a in A.ATTRIBUTES}}
        for lang in C.LANGUAGES:
            text = C.caption(row, lang, rng)
            phrasings.add(text)
            asked = C.requested(tokenizer.split(text))
            assert asked["digit"] == row["digit"], text
            assert all(row[a] == level for a, level in asked.items()), (text, asked, row)
            tokenizer.encode(text)                  # every caption is inside the vocabulary and short enough
    assert len(phrasings) > 300                     # variety, not one template


def test_tokenizer_splits_english_phrases_and_chinese_words():
    tok = PromptTokenizer()
    assert tok.split("一个粗体的 7") == ["一个", "粗体", "的", "7"]
    assert tok.split("一个细长向右倾斜的7") == ["一个", "细长", "向右倾斜", "的", "7"]
    assert tok.split("A thin, slanted 2") == ["a", "thin", "slanted", "2"]
    assert tok.split("a 7 leaning left") == ["a", "7", "leaning left"]
    ids = tok.encode("a bold 3")
    assert ids.shape == (MAX_TOKENS,) and ids[0] == START and ids[4] == END and (ids[5:] == PAD).all()
    assert tok.decode(ids) == ["a", "bold", "3"]
    assert C.requested(tok.split("一个粗体的 7")) == {"thickness": 2, "digit": 7}
    assert C.requested(tok.split("a thin slanted 2")) == {"thickness": 0, "slant": 2, "digit": 2}
    assert tok.encode("", allow_empty=True)[:3].tolist() == [START, END, PAD]


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("   ", "empty"), ("a purple 7", '"purple"'),
                                             ("一个绿色的 7", '"绿"'), ("a " + "thin " * 20 + "7", "too long")])
def test_bad_prompts_raise_one_clear_message(prompt, message):
    with pytest.raises(ValueError, match=message):
        PromptTokenizer().encode(prompt)


def test_bad_prompt_messages_are_translated():
    try:
        i18n.set_language("zh")
        with pytest.raises(ValueError, match="提示词"):
            PromptTokenizer().encode("")
    finally:
        i18n.set_language("en")


# --------------------------------------------------------------------------- CLIP

def test_contrastive_loss_matches_a_hand_computed_case():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[2.0, 0.0], [0.6, 0.8]])   # normalised: (1, 0) and (0.6, 0.8)
    # cosines: image 0 -> (1, 0.6), image 1 -> (0, 0.8); columns: text 0 <- (1, 0), text 1 <- (0.6, 0.8)
    rows = (math.log(math.e ** 1 + math.e ** 0.6) - 1) + (math.log(1 + math.e ** 0.8) - 0.8)
    cols = (math.log(math.e ** 1 + 1) - 1) + (math.log(math.e ** 0.6 + math.e ** 0.8) - 0.8)
    expected = (rows / 2 + cols / 2) / 2
    assert clip_loss(image, text, torch.tensor(0.0)).item() == pytest.approx(expected, abs=1e-6)
    # temperature: logit_scale = log 2 doubles every logit
    rows2 = (math.log(math.e ** 2 + math.e ** 1.2) - 2) + (math.log(1 + math.e ** 1.6) - 1.6)
    cols2 = (math.log(math.e ** 2 + 1) - 2) + (math.log(math.e ** 1.2 + math.e ** 1.6) - 1.6)
    assert clip_loss(image * 5, text, torch.tensor(math.log(2))).item() == pytest.approx((rows2 + cols2) / 4, abs=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        clip_loss(image, text[:1], torch.tensor(0.0))


def test_recall_at_k_counts_any_right_item():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])
    same = torch.eye(3, dtype=torch.bool)
    assert recall_at_k(sim, same, 1) == pytest.approx(1 / 3)          # only row 0's best is itself
    assert recall_at_k(sim, same, 2) == pytest.approx(2 / 3)          # row 2's top two are 0 and 1
    same[1, 2] = True                                                 # item 2 is also right for query 1
    assert recall_at_k(sim, same, 1) == pytest.approx(2 / 3)


def test_tiny_clip_shapes_and_padding_is_ignored():
    torch.manual_seed(0)
    clip = TinyCLIP(ClipConfig()).eval()
    tok = PromptTokenizer()
    ids = tok.encode_batch(["a thin 7", "一个粗体的 3"])
    states, keep = clip.token_states(ids)
    assert states.shape == (2, MAX_TOKENS, 64) and keep.sum(1).tolist() == [5, 6]
    assert clip.encode_image(torch.rand(2, 1, 28, 28)).shape == (2, 64)
    longer = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1)[:, :MAX_TOKENS]   # more padding: same result
    assert torch.allclose(clip.encode_text(longer), clip.encode_text(ids))
    assert clip(torch.rand(2, 1, 28, 28), ids).ndim == 0


# --------------------------------------------------------------------------- cross-attention and the U-Net

def _diffusers_attention(dim, context_dim, heads):
    attention = pytest.importorskip("diffusers.models.attention_processor")
    return attention.Attention(dim, cross_attention_dim=context_dim, heads=heads, dim_head=dim // heads).eval()


def test_cross_attention_equals_diffusers_attention_with_the_same_weights():
    torch.manual_seed(0)
    ref = _diffusers_attention(48, 64, 4)
    ours = CrossAttention(48, 64, 4)
    ours.to_q.weight.data, ours.to_k.weight.data = ref.to_q.weight.data.clone(), ref.to_k.weight.data.clone()
    ours.to_v.weight.data = ref.to_v.weight.data.clone()
    ours.to_out.weight.data, ours.to_out.bias.data = ref.to_out[0].weight.data.clone(), ref.to_out[0].bias.data.clone()
    x, context = torch.randn(3, 49, 48), torch.randn(3, MAX_TOKENS, 64)
    keep = torch.ones(3, MAX_TOKENS, dtype=torch.bool)
    keep[1, 5:] = False
    keep[2, 3:] = False
    bias = torch.zeros(3, 1, MAX_TOKENS).masked_fill(~keep[:, None, :], float("-inf"))  # diffusers: additive mask
    with torch.no_grad():
        assert (ours(x, context) - ref(x, encoder_hidden_states=context)).abs().max() < 1e-5
        assert (ours(x, context, keep) - ref(x, encoder_hidden_states=context, attention_mask=bias)).abs().max() < 1e-5
        masked = ours(x, context, keep)
        context[1, 5:] = 100.0                                      # padding tokens change: nothing else does
        assert torch.allclose(ours(x, context, keep)[1], masked[1])


def test_unet_shapes_and_errors():
    unet = TextUNet(TextUNetConfig())
    states = torch.randn(2, MAX_TOKENS, 64)
    out = unet(torch.randn(2, 4, 7, 7), torch.tensor([10, 900]), states, torch.ones(2, MAX_TOKENS, dtype=torch.bool))
    assert out.shape == (2, 4, 7, 7)
    pixel = TextUNet(TextUNetConfig(in_channels=1, size=28, channels=(16, 32, 48), attention=(False, True, True),
                                    autoencoder=None))
    assert pixel(torch.randn(1, 1, 28, 28), torch.tensor([5]), states[:1]).shape == (1, 1, 28, 28)
    with pytest.raises(ValueError, match="takes inputs"):
        unet(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), states)
    with pytest.raises(ValueError, match="one attention flag per level"):
        TextUNetConfig(channels=(48, 64), attention=(True,))


def test_autoencoder_shapes_and_scale():
    ae = LatentAutoencoder(AutoencoderConfig(scale=2.0))
    x = torch.rand(3, 1, 28, 28)
    z = ae.encode(x)
    assert z.shape == (3, 4, 7, 7)
    assert torch.allclose(z, ae.moments(x)[0] * 2.0)
    assert ae.decode(z).shape == (3, 1, 28, 28) and 0 <= ae.decode(z).min() and ae.decode(z).max() <= 1
    with pytest.raises(ValueError, match="latents"):
        ae.decode(torch.randn(1, 4, 8, 8))


def test_sdedit_start_skips_the_first_steps():
    from aigc_course.models.diffusion import linear_schedule

    schedule = linear_schedule(1000)
    x0, noise = torch.randn(2, 4, 7, 7), torch.randn(2, 4, 7, 7)
    x, kept = sdedit_start(schedule, x0, 0.6, 20, noise)
    assert kept == list(range(550, -1, -50))                         # 12 of the 20 steps: 550, 500, ..., 0
    abar = schedule.alphas_cumprod[550]
    assert torch.allclose(x, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    assert sdedit_start(schedule, x0, 1.0, 20, noise)[1][0] == 950  # strength 1: the full sampler
    with pytest.raises(ValueError, match="strength"):
        sdedit_start(schedule, x0, 0.0, 20, noise)


def test_condition_repeats_one_prompt_and_refuses_a_wrong_count():
    cond = Condition(torch.randn(1, MAX_TOKENS, 64), torch.ones(1, MAX_TOKENS, dtype=torch.bool))
    assert cond.repeat(5).states.shape == (5, MAX_TOKENS, 64)
    with pytest.raises(ValueError, match="one prompt or 3"):
        Condition(torch.randn(2, MAX_TOKENS, 64), torch.ones(2, MAX_TOKENS, dtype=torch.bool)).repeat(3)


def _untrained_pipeline():
    from aigc_course.models.text2img import TextToImage

    torch.manual_seed(0)
    return TextToImage(TextUNet(TextUNetConfig()), TinyCLIP(ClipConfig()), LatentAutoencoder())


def test_pipeline_inpainting_keeps_the_unmasked_pixels_and_seeds_fix_samples():
    pipe = _untrained_pipeline()
    images = torch.rand(2, 1, 28, 28)
    mask = torch.zeros(1, 1, 28, 28)
    mask[..., :14, :] = 1
    out = pipe.inpaint(images, mask, "a 7", steps=4)
    assert torch.equal(out[..., 14:, :], images[..., 14:, :])
    assert not torch.equal(out[..., :14, :], images[..., :14, :])
    a, b = pipe.generate("a 7", n=2, steps=4, seed=3), pipe.generate("a 7", n=2, steps=4, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, pipe.generate("a 7", n=2, steps=4, seed=4))
    assert pipe.edit(images, "一个粗体的 7", strength=0.5, steps=4).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="guidance"):
        pipe.generate("a 7", guidance=-1)
    with pytest.raises(ValueError, match="unknown word"):
        pipe.generate("a purple 7")


# --------------------------------------------------------------------------- the shipped model

@pytest.fixture(scope="module")
def shipped():
    from aigc_course.models.hub import load_pretrained, load_text_to_image

    return load_text_to_image(), load_pretrained("digit_classifier")[0]


def test_shipped_checkpoints_fit_the_budget():
    from aigc_course.core.assets import data_dir

    sizes = [(data_dir() / "checkpoints" / f"{name}.safetensors").stat().st_size
             for name in ("t2i_autoencoder", "t2i_clip", "t2i_unet")]
    assert sum(sizes) <= 5_000_000


def test_shipped_model_draws_what_the_prompt_asks(shipped):
    from aigc_course.metrics.images import predict_labels

    pipe, classifier = shipped
    for prompt, digit in (("a 7", 7), ("一个粗体的 3", 3), ("the digit two", 2)):
        images = pipe.generate(prompt, n=8, guidance=3.0, seed=0)
        assert (predict_labels(classifier, images) == digit).sum() >= 6, prompt
    bold = A.thickness(pipe.generate("a bold 4", n=16, seed=1)).mean()
    thin = A.thickness(pipe.generate("a thin 4", n=16, seed=1)).mean()
    assert bold > thin + 0.4
    right = A.slant(pipe.generate("a 1 leaning right", n=16, seed=2)).mean()
    left = A.slant(pipe.generate("a 1 leaning left", n=16, seed=2)).mean()
    assert right > left + 0.2


def test_cli_samples_a_prompt_and_refuses_a_bad_one(tmp_path, capsys):
    from aigc_course.__main__ import main

    out = tmp_path / "x.png"
    assert main(["sample", "t2i", "--prompt", "a bold 3", "--n", "4", "--steps", "10", "--out", str(out)]) == 0
    assert out.exists() and "a bold 3" in capsys.readouterr().out
    assert main(["sample", "t2i", "--prompt", "a purple 3", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown word(s) \"purple\"") and "Traceback" not in err
    assert main(["sample", "diffusion", "--prompt", "a 3", "--out", str(out)]) == 1


def test_prompt_explorer_redraws_and_reports_bad_prompts(shipped):
    pytest.importorskip("ipywidgets")
    from aigc_course.views.widgets import PromptExplorer

    pipe, classifier = shipped
    explorer = PromptExplorer(pipe, classifier, prompt="a 7", n=4, steps=10)
    first = explorer.image.value
    assert "digit 7:" in explorer.status.value
    explorer.prompt.value = "一个粗体的 3"
    assert explorer.image.value != first and "thickness bold:" in explorer.status.value
    drawn = explorer.image.value
    explorer.prompt.value = "a purple 3"
    assert explorer.image.value == drawn and "unknown word" in explorer.status.value
    assert isinstance(explorer.last_error, ValueError)


# --------------------------------------------------------------------------- exercises 8.1-8.4

def test_exercise_checks_accept_the_equations_and_reject_common_mistakes(capsys):
    from aigc_course.teaching import exercises as ex

    def one_way(image, text, s):                    # image -> text only
        image, text = torch.nn.functional.normalize(image, dim=-1), torch.nn.functional.normalize(text, dim=-1)
        return torch.nn.functional.cross_entropy(s.exp() * image @ text.T, torch.arange(len(image)))
    ex.check_clip_loss(one_way)

    def unmasked(x, context, keep, w_q, w_k, w_v, w_o, b_o, heads):
        layer = CrossAttention(x.shape[-1], context.shape[-1], heads)
        for linear, w in ((layer.to_q, w_q), (layer.to_k, w_k), (layer.to_v, w_v), (layer.to_out, w_o)):
            linear.weight.data = w
        layer.to_out.bias.data = b_o
        return layer(x, context).detach()           # forgot the padding mask
    ex.check_cross_attention(unmasked)

    def from_the_top(x0, strength, steps, abar, noise):   # t0 = strength * T, not a timestep the sampler visits
        a = abar[int(strength * (len(abar) - 1))]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise
    ex.check_sdedit_start(from_the_top)

    def no_update(model, images, texts, optimizer):
        return clip_loss(model.encode_image(images), model.encode_text(texts), model.logit_scale)
    ex.check_clip_step(no_update)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("not yet" in line for line in lines), lines


def test_heldout_prompts_are_class_balanced_for_any_n():
    from aigc_course.metrics.text2img import balanced_order, heldout_prompts

    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    assert labels[balanced_order(labels)].tolist() == [0, 1, 2, 0, 1, 0]
    prompts, images = heldout_prompts(30)
    digits = [C.requested(PromptTokenizer().split(p))["digit"] for p in prompts]
    assert sorted(digits) == sorted(list(range(10)) * 3) and images.shape == (30, 1, 28, 28)
