"""benchmarks/style_equal_loss.py: the yardstick must be the tutorial's objective, and the same one ours optimises."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("style_equal_loss", ROOT / "benchmarks" / "style_equal_loss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weights_are_the_tutorials_in_caffe_units(bench):
    # torchvision's ImageNet std (0.229, 0.224, 0.225) averages 0.226; Caffe pixels are 0-255
    assert bench.K == pytest.approx(255 * 0.226, rel=1e-3)
    assert bench.CONTENT_WEIGHT * bench.K ** 2 == pytest.approx(1.0)
    assert bench.STYLE_WEIGHT * bench.K ** 4 == pytest.approx(1e6)


def test_time_to_reach_is_the_first_time_at_or_below_the_target(bench):
    curve = [(0.5, 10.0), (1.0, 4.0), (1.5, 6.0), (2.0, 3.0)]
    assert bench.time_to_reach(curve, 4.0) == 1.0
    assert bench.time_to_reach(curve, 3.5) == 2.0
    assert math.isnan(bench.time_to_reach(curve, 1.0))


def test_common_loss_equals_ours_own_objective_on_ours_images(bench):
    from aigc_course.data.images import load_image
    torch.manual_seed(0)
    content, style = load_image("chelsea", 48), load_image("flower", 48)
    style = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear", antialias=True)
    image, trace = bench.run_ours(content, style, 4, bf16=False)
    assert len(trace) == 4  # one recorded image per loss evaluation, none for the targets
    assert [t for t, _ in trace] == sorted(t for t, _ in trace)
    common = [v for _, v in bench.common_losses(trace, content, style)]
    # ours, rerun with the same settings, reports its own losses for the same images
    from aigc_course.models import style as S
    from aigc_course.train.stylize import stylize
    cfg = S.StyleConfig(content_layers=S.TUTORIAL_CONTENT, style_layers=S.TUTORIAL_STYLE, tv_weight=0.0,
                        content_weight=bench.CONTENT_WEIGHT, style_weight=bench.STYLE_WEIGHT, steps=4,
                        size=48, bf16=False)
    own = [h["total"] for h in stylize(content, style, cfg, progress=False).history]
    assert common == pytest.approx(own, rel=1e-4)


def test_baseline_records_every_evaluation_and_lowers_the_loss(bench):
    from aigc_course.data.images import load_image
    content, style = load_image("chelsea", 48), load_image("flower", 48)
    style = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear", antialias=True)
    image, trace = bench.run_baseline(content, style, 5)
    assert len(trace) == 20  # one 20-iteration L-BFGS call, as the tutorial's loop makes
    curve = bench.common_losses(trace, content, style)
    assert min(v for _, v in curve) < 0.8 * curve[0][1]
    assert image.min() >= 0 and image.max() <= 1
