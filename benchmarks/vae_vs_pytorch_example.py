"""Our VAE against the classic PyTorch-examples VAE, trained for the same wall-clock time.

Baseline: the architecture and settings of ``pytorch/examples/vae`` (fully
connected 784-400-20, ReLU, Adam lr 1e-3, batch 128, BCE + KL), re-written
here against our ``encode``/``decode`` interface so both models are trained by
the same loop on the same 8,000 digits and scored by the same code on the same
2,000 held-out digits. Ours: the ``vae_conv16`` recipe (convolutional, 16-D).

Prints the test negative ELBO and the importance-weighted NLL (k samples) of
each, and the ratio ours / baseline (< 1 means ours is better).

    python benchmarks/vae_vs_pytorch_example.py --seconds 120 --k 500
"""
from __future__ import annotations

import argparse
import dataclasses

import torch
from torch import nn

from aigc_course import metrics
from aigc_course.data.digits import digit_loaders, load_digits
from aigc_course.core.env import hardware_summary, seed_everything, set_threads
from aigc_course.recipes.vae import VAE_PRESETS, vae_step_loss
from aigc_course.models.vae import VAE
from aigc_course.train import fit


class ExampleVAE(nn.Module):
    """The pytorch/examples VAE layout: 784 -> 400 -> (mu, logvar) in 20-D -> 400 -> 784."""

    latent_dim = 20

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(784, 400)
        self.mu, self.logvar = nn.Linear(400, 20), nn.Linear(400, 20)
        self.dec = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

    def encode(self, x):
        h = torch.relu(self.hidden(x.flatten(1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return self.dec(z).view(-1, 1, 28, 28)  # logits; the example applies the sigmoid inside BCE

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * (torch.randn_like(mu) if eps is None else eps)
        return self.decode(z), mu, logvar


def run(name: str, model: nn.Module, seconds: float, k: int, seed: int) -> dict:
    seed_everything(seed)
    train_loader, _ = digit_loaders(batch_size=128, seed=seed)
    history = fit(model, vae_step_loss(1.0), train_loader, epochs=10_000, lr=1e-3,
                  max_seconds=seconds, progress=False)
    test = load_digits("test")
    return {"name": name, "epochs": history.steps[-1]["epoch"], "seconds": history.seconds,
            "neg_elbo": metrics.negative_elbo(model, test),
            "iw_nll": metrics.importance_weighted_nll(model, test, k=k)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="training budget per model")
    parser.add_argument("--k", type=int, default=500, help="importance samples for the NLL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    set_threads()
    print(f"{hardware_summary()}; budget {args.seconds:.0f} s of training per model; NLL with k={args.k}")
    seed_everything(args.seed)
    baseline = run("pytorch/examples VAE (MLP 784-400-20)", ExampleVAE(), args.seconds, args.k, args.seed)
    seed_everything(args.seed)
    ours_model = VAE(dataclasses.replace(VAE_PRESETS["vae_conv16"].model))
    ours = run("aigc_course vae_conv16 (conv, 16-D)", ours_model, args.seconds, args.k, args.seed)
    print(f"\n{'model':<40} {'epochs':>6} {'train s':>8} {'-ELBO':>8} {'IW-NLL':>8}  (nats per test digit)")
    for r in (baseline, ours):
        print(f"{r['name']:<40} {r['epochs']:>6} {r['seconds']:>8.1f} {r['neg_elbo']:>8.2f} {r['iw_nll']:>8.2f}")
    print(f"\nratio ours / baseline: IW-NLL {ours['iw_nll'] / baseline['iw_nll']:.3f}, "
          f"-ELBO {ours['neg_elbo'] / baseline['neg_elbo']:.3f}  (< 1: ours is better)")


if __name__ == "__main__":
    main()
