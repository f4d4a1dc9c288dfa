"""Lesson 01's five exercises as a grader sees them: signatures, check functions, right and wrong bodies.

Shared by the grading tests (test_grading, test_hostile_grading, test_nbgrader_pipeline), which build small
lesson-like '01_vae' submissions from these pieces instead of running the real 40-second lesson.
Bodies are one indentation level deep (a function body); ``indented`` shifts them for a cell that starts at column 0.
"""
IDS = ("1.1", "1.2", "1.3", "1.4", "1.5")
SIGNATURES = {"my_reparameterize": "mu, logvar, eps", "my_kl": "mu, logvar", "my_vae_step": "model, optimizer, x, eps",
              "my_answer_1_4": "", "my_answer_1_5": ""}
CHECKS = {"my_reparameterize": "check_reparameterize", "my_kl": "check_kl", "my_vae_step": "check_vae_step",
          "my_answer_1_4": "check_answer", "my_answer_1_5": "check_answer"}


def vae_step(zero_grad_line: str, *, returns: bool = False) -> str:
    """Exercise 1.3's body (a VAE training step) with ``zero_grad_line`` where ``optimizer.zero_grad()`` belongs."""
    lines = ["mu, logvar = model.encode(x)",
             "logits = model.decode(mu + torch.exp(0.5 * logvar) * eps)",
             "rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction='none')",
             "loss = (rec.flatten(1).sum(1) + 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)).mean()",
             zero_grad_line, "loss.backward()", "optimizer.step()"] + (["return loss.detach()"] if returns else [])
    return "\n    ".join(lines)


RIGHT = {"my_reparameterize": "return mu + torch.exp(0.5 * logvar) * eps",
         "my_kl": "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)",
         "my_vae_step": vae_step("optimizer.zero_grad()"),
         "my_answer_1_4": "return 'B'", "my_answer_1_5": "return 'C'"}
# Typical mistakes: exp(logvar) is the variance, not the standard deviation; a KL not summed over the latent
# dimensions; a step that ascends the loss; the wrong letters.
WRONG = {"my_reparameterize": "return mu + torch.exp(logvar) * eps",
         "my_kl": "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)",
         "my_vae_step": vae_step("loss = -loss  # ascends the loss"),
         "my_answer_1_4": "return 'A'", "my_answer_1_5": "return 'B'"}


def indented(bodies: dict[str, str]) -> dict[str, str]:
    """The bodies with their first line indented too, for cells written as ``def f(...):\\n`` + body."""
    return {name: "    " + body for name, body in bodies.items()}
