import pytest
import torch
from torch.utils.data import DataLoader, Subset

from aigc_course.data.digits import load_digits
from aigc_course.models.vae import VAE, VAEConfig
from aigc_course.recipes.vae import VAERecipe, train_vae, vae_step_loss
from aigc_course.train import fit


def _small_loader(seed=0):
    train = Subset(load_digits("train"), range(512))
    return DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))


def test_fit_lowers_the_loss_and_records_history():
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden=64))
    evals = []
    history = fit(model, vae_step_loss(1.0), _small_loader(), epochs=4, lr=2e-3, progress=False,
                  evaluate=lambda m: {"calls": float(len(evals))}, eval_every=2,
                  on_epoch_end=lambda epoch, h: evals.append(epoch))
    losses = history.series("loss")
    assert len(losses) == 4 * 8 and evals == [1, 2, 3, 4]
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8
    assert [e["epoch"] for e in history.evals] == [2, 4] and history.seconds > 0
    assert not model.training


def test_same_seed_same_model():
    def run():
        torch.manual_seed(1)
        model = VAE(VAEConfig(hidden=32))
        fit(model, vae_step_loss(1.0), _small_loader(seed=1), epochs=1, progress=False)
        return torch.cat([p.flatten() for p in model.parameters()])
    assert torch.equal(run(), run())


def test_train_vae_recipe_saves_a_card_with_metrics(tmp_path):
    recipe = VAERecipe(VAEConfig(hidden=32), epochs=1)
    model, history, results = train_vae(recipe, out=tmp_path / "m", command="unit test", iw_k=5, progress=False)
    card = (tmp_path / "m.json").read_text()
    assert '"command": "unit test"' in card and '"test_iw_nll"' in card
    # the importance-weighted NLL is below the negative ELBO (a tighter bound)
    assert results["test_iw_nll"] < results["test_neg_elbo"]


def test_cosine_decay_lowers_the_learning_rate_to_a_twentieth(monkeypatch):
    from aigc_course.train import cosine_factor

    assert cosine_factor(0, 100) == 1.0 and cosine_factor(100, 100) == 0.05 and cosine_factor(500, 100) == 0.05
    assert cosine_factor(50, 100) == pytest.approx(0.525)
    optimizers, seen = [], []
    adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **kw: optimizers.append(adam(*a, **kw)) or optimizers[-1])

    def step_loss(model, batch):  # records the learning rate each step runs with
        seen.append(optimizers[0].param_groups[0]["lr"])
        return vae_step_loss(1.0)(model, batch)

    fit(VAE(VAEConfig(hidden=16)), step_loss, _small_loader(), epochs=2, lr=1e-2, progress=False, cosine_decay=True)
    assert seen[0] == pytest.approx(1e-2) and len(seen) == 16
    assert all(a > b for a, b in zip(seen, seen[1:]))  # falls at every step
    assert seen[-1] == pytest.approx(1e-2 * cosine_factor(15, 16))
