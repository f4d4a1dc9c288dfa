import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# --- train dispatches through the recipe registry ---------------------------------------------------------

def readme_commands() -> list[list[str]]:
    """The ``python -m aigc_course ...`` lines of the README's "Train a checkpoint yourself" section."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Train a checkpoint yourself", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line.split("aigc_course", 1)[1].split("#", 1)[0])
            for line in section.splitlines() if "python -m aigc_course" in line]


def test_every_readme_command_parses_and_names_a_known_preset_or_checkpoint():
    from aigc_course.__main__ import build_parser
    from aigc_course.core.checkpoints import shipped_names
    from aigc_course.recipes import FAMILIES

    commands = readme_commands()
    assert len(commands) >= 15 and {c[0] for c in commands} >= {"train", "sample", "stylize", "generate", "check"}
    for argv in commands:
        args = build_parser().parse_args(argv)
        if args.command == "train":
            family = FAMILIES[args.family]
            preset = args.preset or family.default
            assert preset in family.presets, argv
            assert family.trainer(preset).saves, argv  # the README saves every one it trains
            assert Path(args.out).name == preset  # a shipped checkpoint is named after its preset
        if getattr(args, "checkpoint", None):
            assert args.checkpoint in shipped_names(), argv


def test_registry_covers_every_preset_and_its_flags_exist_on_the_recipes():
    import dataclasses

    from aigc_course.recipes import FAMILIES
    from aigc_course.recipes.gan import GAN_PRESETS, TOY_PRESETS
    from aigc_course.recipes.gpt import GPT_PRESETS

    from aigc_course.recipes.text2img import T2I_PRESETS

    assert set(FAMILIES) == {"vae", "classifier", "gan", "diffusion", "gpt", "t2i", "assistant"}
    assert set(FAMILIES["t2i"].presets) == set(T2I_PRESETS) == {"t2i_autoencoder", "t2i_clip", "t2i_unet"}
    assert set(FAMILIES["assistant"].presets) == {"emergence", "in_context", "grokking", "scratchpad", "chat_base",
                                                  "chat_sft", "chat_dpo"}
    assert set(FAMILIES["gan"].presets) == set(GAN_PRESETS) | set(TOY_PRESETS)
    assert set(FAMILIES["gpt"].presets) == set(GPT_PRESETS)
    assert FAMILIES["gpt"].trainer("tang_lora").saves and not FAMILIES["gpt"].trainer("tang_full").saves
    for family in FAMILIES.values():
        assert family.default in family.presets
        names = [name for t in family.trainers for name in t.presets]
        assert len(names) == len(set(names))  # each preset has exactly one trainer
        for trainer in family.trainers:
            for recipe in trainer.presets.values():
                fields = {f.name for f in dataclasses.fields(recipe)}
                assert set(trainer.overrides) <= fields


def test_train_flag_errors_name_what_applies(capsys):
    assert main(["train", "gan", "--preset", "dcgan", "--steps", "5"]) == 1
    assert "--steps does not apply to the gan preset dcgan (it takes --epochs, --seed)" in capsys.readouterr().err
    assert main(["train", "gpt", "--epochs", "3"]) == 1
    assert "--epochs does not apply to the gpt preset gpt_char (it takes --iters, --seed)" in capsys.readouterr().err
    assert main(["train", "gan", "--preset", "toy_r1", "--out", "x"]) == 1
    assert "not saved" in capsys.readouterr().err
    assert main(["train", "gpt", "--preset", "tang_full", "--out", "x"]) == 1
    assert "fine-tunes every weight and is not saved" in capsys.readouterr().err
    assert main(["train", "gan", "--preset", "nope"]) == 1
    assert "choose from dcgan, cgan, toy_vanilla" in capsys.readouterr().err


def test_train_toy_gan_runs_unsaved(capsys):
    assert main(["train", "gan", "--preset", "toy_vanilla", "--steps", "20"]) == 0
    assert capsys.readouterr().out.startswith("toy_vanilla: 20 steps in ")


def test_train_gpt_under_data_registers_its_files(data_copy, capsys):
    out = data_copy / "checkpoints" / "gpt_char_tiny"
    assert main(["train", "gpt", "--preset", "gpt_char_tiny", "--iters", "2", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["kind"] == "GPT" and card["recipe"]["iters"] == 2 and card["metrics"]["steps"] == 2
    registry = {a["path"]: a for a in json.loads((data_copy / "assets.json").read_text())}
    for suffix in (".json", ".safetensors"):
        entry = registry[f"checkpoints/gpt_char_tiny{suffix}"]
        assert entry["source"] == "trained by this course (preset gpt_char_tiny) on data/text/shakespeare.txt"
        assert entry["made_by"].endswith("--preset gpt_char_tiny --iters 2 --out " + str(out))


def test_lora_preset_writes_an_adapter_that_generate_loads(tmp_path, capsys):
    out = tmp_path / "my_lora"
    assert main(["train", "gpt", "--preset", "tang_lora", "--iters", "2", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["kind"] == "LoRAAdapter" and card["base"] == "gpt_char" and card["parameters"] == 24_576
    capsys.readouterr()
    assert main(["generate", "--prompt", "春", "--checkpoint", str(out), "--max-new-tokens", "6", "--greedy"]) == 0
    assert capsys.readouterr().out.startswith("春")


# --- every "name or path" goes through models.hub.load ------------------------------------------------------

def test_generate_applies_a_shipped_adapter_by_name_or_flag(capsys):
    def run(*argv):
        assert main(["generate", "--prompt", "春眠", "--max-new-tokens", "24", "--greedy", *argv]) == 0
        return capsys.readouterr().out

    plain, by_name, by_flag = run(), run("--checkpoint", "tang_lora"), run("--adapter", "tang_lora")
    assert by_name == by_flag and by_name != plain  # the adapter changes what gpt_char writes
    assert main(["generate", "--prompt", "x", "--adapter", "gpt_char"]) == 1
    assert "not a LoRA adapter" in capsys.readouterr().err


def test_unknown_checkpoint_names_both_possibilities(capsys, tmp_path):
    assert main(["sample", "gan", "--checkpoint", str(tmp_path / "mine")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'mine'}.json does not exist" in err and "none of cgan, chat_base, chat_dpo, chat_sft, dcgan" in err
    assert main(["sample", "vae", "--checkpoint", "dcgan"]) == 1
    assert "dcgan is a DCGAN, not a vae" in capsys.readouterr().err
