import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aigc_course.__main__ import main


def test_check_prints_environment_and_assets(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "digits.npz" in out and "all files present and intact" in out


def test_check_fails_clearly_on_a_damaged_asset(data_copy, capsys):
    (data_copy / "digits.npz").write_bytes(b"oops")
    assert main(["assets", "--verify"]) == 1
    captured = capsys.readouterr()
    assert "truncated" in captured.err and "1 file(s) need attention" in captured.out


def test_sample_writes_a_png_grid(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["sample", "vae", "--checkpoint", "vae_conv16", "--n", "16", "--scale", "1", "--out", str(out)]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (4 * 30 + 2, 4 * 30 + 2) and img.std() > 20


def test_train_writes_a_card_with_the_command(tmp_path):
    out = tmp_path / "ckpt"
    assert main(["train", "vae", "--preset", "vae_mlp2d", "--epochs", "1", "--iw-k", "0", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["command"].startswith("python -m aigc_course train vae --preset vae_mlp2d --epochs 1")
    assert card["recipe"]["epochs"] == 1 and card["metrics"]["test_neg_elbo"] > 0


def test_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "aigc_course", "sample", "vae", "--checkpoint", "no_such_model"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_train_classifier_and_bad_flags(tmp_path, capsys):
    out = tmp_path / "clf"
    assert main(["train", "classifier", "--epochs", "1", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["kind"] == "DigitClassifier" and 0.5 < card["metrics"]["test_accuracy"] <= 1.0
    assert main(["train", "classifier", "--beta", "2", "--epochs", "1"]) == 1
    assert "--beta does not apply" in capsys.readouterr().err
    assert main(["train", "vae", "--preset", "digit_classifier"]) == 1
