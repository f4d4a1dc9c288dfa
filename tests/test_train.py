"""The one training loop (train/): fit, the schedule, the callbacks, and that no other loop is left."""
import math
import re
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from aigc_course.data.digits import load_digits
from aigc_course.models.vae import VAE, VAEConfig
from aigc_course.recipes.vae import VAERecipe, train_vae, vae_step_loss
from aigc_course.train import (EMA, Callback, EvalEvery, Snapshot, WarmupCosine, adam, fit, update,
                               warmup_cosine)

PACKAGE = Path(__file__).resolve().parents[1] / "aigc_course"


def _line_data(n=256, batch=32, seed=0):
    """y = 3x + 2 + noise with std 0.1: the best possible mean squared error is 0.01."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    y = 3 * x + 2 + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=g)


def _mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def _small_loader(seed=0):
    train = Subset(load_digits("train"), range(512))
    return DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ fit


def test_fit_learns_a_line_to_the_noise_floor():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    history = fit(model, _mse, _line_data(), epochs=30, optimizer=adam(0.1), progress=False)
    assert len(history.steps) == 30 * 8 and history.steps[-1]["epoch"] == 30
    assert history.epoch_means()[-1] < 0.02  # noise variance 0.01; the initial loss is ~7
    assert model.weight.item() == pytest.approx(3, abs=0.05) and model.bias.item() == pytest.approx(2, abs=0.05)
    assert not model.training and history.seconds > 0


def test_fit_with_a_batch_sampler_and_steps():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    calls = []

    def draw():
        calls.append(1)
        x = torch.rand(32, 1, generator=g)
        return x, 3 * x + 2

    history = fit(nn.Linear(1, 1), _mse, draw, steps=400, optimizer=adam(0.05), progress=False)
    assert len(calls) == len(history.steps) == 400 and {r["epoch"] for r in history.steps} == {1}
    assert history.steps[-1]["loss"] < 1e-3  # no noise: the loss goes to 0


def test_steps_on_a_loader_run_across_epochs():
    history = fit(nn.Linear(1, 1), _mse, _line_data(n=64), steps=5, progress=False)  # 2 batches per epoch
    assert [r["epoch"] for r in history.steps] == [1, 1, 2, 2, 3]


def test_same_seed_same_model():
    def run():
        torch.manual_seed(1)
        model = VAE(VAEConfig(hidden=32))
        fit(model, vae_step_loss(1.0), _small_loader(seed=1), epochs=1, progress=False)
        return torch.cat([p.flatten() for p in model.parameters()])
    assert torch.equal(run(), run())


def test_fit_errors_are_clear():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="exactly one of steps= or epochs="):
        fit(model, _mse, _line_data(), progress=False)
    with pytest.raises(ValueError, match="exactly one of steps= or epochs="):
        fit(model, _mse, _line_data(), steps=3, epochs=1, progress=False)
    with pytest.raises(ValueError, match=">= 1"):
        fit(model, _mse, _line_data(), epochs=0, progress=False)
    with pytest.raises(ValueError, match="give fit steps="):
        fit(model, _mse, lambda: None, epochs=2, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, _mse, [], epochs=1, progress=False)
    with pytest.raises(TypeError, match="DataLoader"):
        fit(model, _mse, 42, epochs=1, progress=False)
    with pytest.raises(ValueError, match="number of steps"):  # a schedule needs a length
        fit(model, _mse, iter([(torch.zeros(1, 1), torch.zeros(1, 1))]), epochs=1, schedule=WarmupCosine(),
            progress=False)


class Scalar(nn.Module):
    """One trainable number w (a model small enough to compute updates by hand)."""

    def __init__(self, value: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(value))


def _sgd(lr):
    return lambda m: torch.optim.SGD(m.parameters(), lr=lr)


def test_grad_clip_limits_the_step():
    model = Scalar(1.0)
    fit(model, lambda m, b: 100 * m.w, None, steps=1, optimizer=_sgd(1.0), grad_clip=1.0, progress=False)
    assert model.w.item() == pytest.approx(0.0, abs=1e-6)  # gradient 100 clipped to norm 1, times lr 1
    model = Scalar(1.0)
    fit(model, lambda m, b: 100 * m.w, None, steps=1, optimizer=_sgd(0.01), progress=False)
    assert model.w.item() == pytest.approx(0.0, abs=1e-6)  # unclipped: 1 - 0.01 * 100


def test_bf16_runs_loss_steps_under_autocast_only_when_asked():
    seen = []

    def step(model, batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return model.w ** 2

    fit(Scalar(), step, None, steps=1, bf16=True, progress=False)
    fit(Scalar(), step, None, steps=1, progress=False)
    assert seen == [True, False]


def test_lbfgs_through_fit_reaches_the_minimum_of_a_quadratic():
    """f(x) = x^T A x / 2 - b^T x with A = [[3, 1], [1, 2]], b = (1, 1): minimum at A^-1 b = (0.2, 0.4), f = -0.3."""
    a, b = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64), torch.tensor([1.0, 1.0], dtype=torch.float64)
    model = nn.Module()
    model.x = nn.Parameter(torch.tensor([5.0, -3.0], dtype=torch.float64))
    evaluations = []

    def step(model, batch):
        evaluations.append(1)
        x = model.x
        return 0.5 * x @ a @ x - b @ x

    lbfgs = lambda m: torch.optim.LBFGS(m.parameters(), lr=1, max_iter=20, line_search_fn="strong_wolfe",  # noqa: E731
                                        tolerance_grad=1e-12, tolerance_change=1e-15)
    history = fit(model, step, None, steps=1, optimizer=lbfgs, progress=False)
    torch.testing.assert_close(model.x.detach(), torch.tensor([0.2, 0.4], dtype=torch.float64), atol=1e-9, rtol=0)
    assert len(history.steps) == 1 and len(evaluations) > 1  # one fit step, several closure calls
    assert history.steps[0]["loss"] == pytest.approx(-0.3, abs=1e-12)  # the last evaluation's loss


def test_an_update_step_with_two_optimisers():
    """Each update moves only its own optimiser's parameter: w by -0.1 * 2w, v by -0.5 * 1."""
    model = nn.Module()
    model.w, model.v = nn.Parameter(torch.tensor(1.0)), nn.Parameter(torch.tensor(1.0))

    def step(model, batch, optimizers):
        update(optimizers["w"], model.w ** 2 + model.v)  # the gradient reaching v is ignored by this optimiser
        update(optimizers["v"], model.v)
        return {"w": model.w.item()}

    history = fit(model, step, None, steps=2, progress=False,
                  optimizer={"w": lambda m: torch.optim.SGD([m.w], lr=0.1),
                             "v": lambda m: torch.optim.SGD([m.v], lr=0.5)})
    assert history.series("w") == pytest.approx([0.8, 0.64]) and model.v.item() == pytest.approx(0.0)


# ------------------------------------------------------------------ schedule


def test_warmup_cosine_at_known_steps():
    # 1) warm-up: (step + 1) / warmup
    assert warmup_cosine(0, 100, warmup=10, floor=0.1) == pytest.approx(0.1)
    assert warmup_cosine(4, 100, warmup=10, floor=0.1) == pytest.approx(0.5)
    # 2) cosine: 1 at its start, half way between 1 and the floor at its middle
    assert warmup_cosine(10, 100, warmup=10, floor=0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, warmup=10, floor=0.1) == pytest.approx(0.55)
    assert warmup_cosine(50, 100) == pytest.approx(0.525)
    assert warmup_cosine(25, 100) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + 0.7071067811865476))
    # 3) floor at and after the end
    assert warmup_cosine(100, 100, warmup=10, floor=0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 100) == 0.05
    # a time-limited run passes its share of the time budget
    assert warmup_cosine(20, 100, warmup=10, progress=0.5) == pytest.approx(0.525)
    with pytest.raises(ValueError, match="total >= 1"):
        warmup_cosine(0, 0)
    with pytest.raises(ValueError, match="floor"):
        warmup_cosine(0, 10, floor=2.0)


def test_fit_applies_the_schedule_at_every_step():
    """Two epochs of 4 batches, warm-up 2, floor 0.1, base rate 0.01: the rates by hand."""
    expected = [0.01 * f for f in (0.5, 1.0, 1.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 6)),
                                   0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 3)), 0.55,
                                   0.1 + 0.9 * 0.5 * (1 + math.cos(2 * math.pi / 3)),
                                   0.1 + 0.9 * 0.5 * (1 + math.cos(5 * math.pi / 6)))]
    history = fit(nn.Linear(1, 1), _mse, _line_data(n=128), epochs=2, optimizer=adam(0.01),
                  schedule=WarmupCosine(warmup=2, floor=0.1), progress=False)
    assert history.series("lr") == pytest.approx(expected)


# ------------------------------------------------------------------ callbacks


class Counter(Callback):
    def __init__(self):
        self.calls = {}

    def _count(self, hook):
        self.calls[hook] = self.calls.get(hook, 0) + 1

    def on_fit_start(self, state): self._count("on_fit_start")
    def on_step(self, state): self._count("on_step")
    def on_eval(self, state): self._count("on_eval")
    def on_epoch_end(self, state): self._count("on_epoch_end")
    def on_fit_end(self, state): self._count("on_fit_end")


def test_callbacks_are_called_the_expected_number_of_times():
    counter, modes = Counter(), []

    def evaluate(model):
        modes.append((model.training, torch.is_grad_enabled()))
        return {"weight": model.weight.item()}

    every_5 = EvalEvery(evaluate, every=5, unit="step")
    history = fit(nn.Linear(1, 1), _mse, _line_data(n=256), epochs=2, callbacks=[every_5, counter], progress=False)
    # 8 batches x 2 epochs; evaluations after steps 5, 10, 15 and a final one after step 16
    assert counter.calls == {"on_fit_start": 1, "on_step": 16, "on_eval": 4, "on_epoch_end": 2, "on_fit_end": 1}
    assert [e["step"] for e in history.evals] == [5, 10, 15, 16] and [e["epoch"] for e in history.evals] == [1, 2, 2, 2]
    assert modes == [(False, False)] * 4  # eval mode, no gradients


def test_eval_every_epoch_skips_the_final_duplicate():
    every_2 = EvalEvery(lambda m: {"one": 1.0}, every=2, unit="epoch")
    history = fit(nn.Linear(1, 1), _mse, _line_data(n=64), epochs=4, callbacks=[every_2], progress=False)
    assert [e["epoch"] for e in history.evals] == [2, 4]
    with pytest.raises(ValueError, match="unit"):
        EvalEvery(lambda m: {}, unit="batch")


def test_ema_callback_matches_a_hand_computation():
    """SGD on loss = w with lr 0.1 moves w 1 -> 0.9 -> 0.8 -> 0.7. With decay 0.5 the EMA's d is
    min(0.5, (1 + n) / (10 + n)) for its n-th average, n = 2, 3, 4 (the copy at the start is n = 1):
    0.25 * 1 + 0.75 * 0.9 = 0.925; 4/13 * 0.925 + 9/13 * 0.8 = 10.9/13; 5/14 * 10.9/13 + 9/14 * 0.7."""
    model, ema = Scalar(1.0), EMA(0.5)
    fit(model, lambda m, b: m.w, None, steps=3, optimizer=_sgd(0.1), callbacks=[ema], progress=False)
    assert model.w.item() == pytest.approx(0.7)
    assert ema.model.w.item() == pytest.approx(5 / 14 * 10.9 / 13 + 9 / 14 * 0.7) == pytest.approx(0.7494505)
    assert ema.updates == 4 and not ema.model.w.requires_grad
    with pytest.raises(ValueError, match="decay"):
        EMA(1.0)


def test_snapshot_callback_takes_frames_at_start_every_n_and_end():
    snaps = Snapshot(lambda state: round(state.model.w.item(), 6), every=2)
    fit(Scalar(1.0), lambda m, b: m.w, None, steps=5, optimizer=_sgd(0.1), callbacks=[snaps], progress=False)
    assert snaps.steps == [0, 2, 4, 5] and snaps.snapshots == pytest.approx([1.0, 0.8, 0.6, 0.5])


def test_max_seconds_stops_training():
    def slow(model, batch):
        time.sleep(0.05)
        return model.w ** 2

    every = EvalEvery(lambda m: {"w": m.w.item()}, every=1000, unit="step")
    history = fit(Scalar(), slow, None, steps=1000, max_seconds=0.2, callbacks=[every], progress=False)
    assert 2 <= len(history.steps) <= 4 and history.seconds >= 0.2  # each step sleeps 0.05 s
    assert [e["step"] for e in history.evals] == [len(history.steps)]  # the final evaluation still runs


def test_a_callback_can_stop_training():
    class StopAt3(Callback):
        def on_step(self, state):
            state.stop = state.step == 3

    history = fit(Scalar(), lambda m, b: m.w ** 2, None, steps=10, callbacks=[StopAt3()], progress=False)
    assert len(history.steps) == 3


# ------------------------------------------------------------------ recipes and the one-loop rule


def test_train_vae_recipe_saves_a_card_with_metrics(tmp_path):
    recipe = VAERecipe(VAEConfig(hidden=32), epochs=1)
    model, history, results = train_vae(recipe, out=tmp_path / "m", command="unit test", iw_k=5, progress=False)
    card = (tmp_path / "m.json").read_text()
    assert '"command": "unit test"' in card and '"test_iw_nll"' in card
    assert [e["epoch"] for e in history.evals] == [1]  # eval every 5 epochs, and at the end
    # the importance-weighted NLL is below the negative ELBO (a tighter bound)
    assert results["test_iw_nll"] < results["test_neg_elbo"]


def test_only_train_runs_backward_or_optimizer_steps():
    """fit (and its update helper) is the course's one training loop: nothing outside train/ back-propagates.

    The one exception is the exercises of the model lessons (teaching/exercises/<lesson>.py): a behaviour-graded
    exercise asks the learner to write a training step (or an L-BFGS closure) by hand, and its reference answer
    is such a step."""
    pattern = re.compile(r"\.backward\(|\.zero_grad\(|\bopt\w*\.step\(")
    allowed = {("train",), *(("teaching", "exercises", f"{lesson}.py")
                             for lesson in ("vae", "gan", "style_transfer", "diffusion", "gpt2", "text_to_image",
                                           "assistant"))}
    offenders = [f"{path.relative_to(PACKAGE)}:{i}" for path in PACKAGE.rglob("*.py")
                 if not any(path.relative_to(PACKAGE).parts[:len(a)] == a for a in allowed)
                 for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
    assert pattern.search("loss.backward()") and pattern.search("opt_d.step()")  # the pattern does match loops
