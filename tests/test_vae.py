import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.models.vae import (VAE, VAEConfig, bernoulli_log_likelihood, elbo,
                                    importance_weighted_log_likelihood, kl_to_standard_normal,
                                    reparameterize)


@pytest.mark.parametrize("arch,latent", [("mlp", 2), ("conv", 16)])
def test_shapes(arch, latent):
    model = VAE(VAEConfig(arch=arch, latent_dim=latent, hidden=64))
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (4, latent)
    assert model.sample(3).shape == (3, 1, 28, 28)


def test_wrong_shapes_give_clear_errors():
    model = VAE(VAEConfig(latent_dim=2, hidden=16))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model.encode(torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model.decode(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="arch"):
        VAEConfig(arch="transformer")


def test_reparameterize_is_mu_plus_sigma_eps_and_differentiable():
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = reparameterize(mu, logvar, torch.tensor([[0.5, 0.5]]))
    assert torch.allclose(z, torch.tensor([[1.5, -1.0]]))
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1, 2)) and torch.allclose(logvar.grad, torch.tensor([[0.25, 0.5]]))


def test_kl_matches_closed_form_and_monte_carlo():
    assert torch.allclose(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))
    mu, logvar = torch.tensor([[0.7, -1.2]]), torch.tensor([[0.3, -0.8]])
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    exact = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), exact, atol=1e-6)
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()
    assert abs(monte_carlo.item() - exact.item()) < 0.02


def test_bernoulli_log_likelihood_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]]])
    p = torch.sigmoid(logits)
    by_hand = math.log(p[0, 0, 0, 0]) + math.log(1 - p[0, 0, 0, 1])
    assert bernoulli_log_likelihood(logits, x).item() == pytest.approx(by_hand, abs=1e-6)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), -F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))


def test_elbo_terms_and_beta():
    model = VAE(VAEConfig(hidden=32))
    x, eps = torch.rand(8, 1, 28, 28), torch.randn(8, 2)
    t1, t4 = elbo(model, x, beta=1.0, eps=eps), elbo(model, x, beta=4.0, eps=eps)
    assert torch.allclose(t1.loss, -(t1.recon - t1.kl))
    assert (t4.loss - t1.loss).item() == pytest.approx(3 * t1.kl.item(), abs=1e-3)
    assert t1.kl >= 0


def _prior_encoder_constant_decoder():
    """A VAE whose q(z|x) equals the prior and whose decoder ignores z: log p(x) is known exactly."""
    model = VAE(VAEConfig(hidden=16))
    for module in (model.encoder[-1], model.decoder[-2]):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
    with torch.no_grad():
        model.decoder[-2].bias.fill_(0.3)
    return model


def test_importance_weighted_estimate_is_exact_when_q_is_the_posterior():
    model = _prior_encoder_constant_decoder()
    x = torch.rand(3, 1, 28, 28)
    exact = bernoulli_log_likelihood(torch.full_like(x, 0.3), x)
    estimate = importance_weighted_log_likelihood(model, x, k=7, chunk=3)
    assert torch.allclose(estimate, exact, atol=1e-3)


def test_importance_weighting_tightens_the_bound():
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden=32))
    x = torch.rand(16, 1, 28, 28).round()
    g = torch.Generator().manual_seed(0)
    elbo_value = -elbo(model, x).loss.item()
    iw = importance_weighted_log_likelihood(model, x, k=200, generator=g).mean().item()
    assert iw > elbo_value  # the IWAE bound is tighter than the ELBO
