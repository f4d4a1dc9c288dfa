"""DPM-Solver++(2M) (models/diffusion.py): the same trajectory as diffusers' DPMSolverMultistepScheduler."""
import pytest
import torch

from aigc_course.models.diffusion import UNet, UNetConfig, dpm_solver_pp_step, linear_schedule, predict_x0, sample

diffusers = pytest.importorskip("diffusers", reason="diffusers is the reference (the `ref` extra)")

TINY = UNetConfig(channels=(8, 8, 16), time_dim=16, attention_heads=2, dropout=0.0)


def _tiny_random_unet() -> UNet:
    torch.manual_seed(0)
    model = UNet(TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():  # zero-initialised outputs get weights, so eps depends on x and t
                p.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("steps", [10, 25])
def test_dpm_solver_pp_sample_follows_diffusers(steps):
    model = _tiny_random_unet()
    x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([3, 7])
    ref = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                                algorithm_type="dpmsolver++", solver_order=2,
                                                timestep_spacing="leading", steps_offset=0)
    ref.set_timesteps(steps)
    x, theirs = x_T.clone(), []
    with torch.no_grad():
        for t in ref.timesteps:
            eps = model(x, torch.full((2,), int(t)), labels)
            x = ref.step(eps, t, x).prev_sample
            theirs.append(x)
    ours = []  # x_t at every step after the first, recorded by the callback (model space)
    # diffusers' DPM-Solver "leading" spacing is its own (1000 // (steps + 1) apart): pass the same timesteps
    got = sample(model, 2, labels, sampler="dpm++", timesteps=[int(t) for t in ref.timesteps], x_T=x_T,
                 callback=lambda t, x_t, x0: ours.append(x_t.clone()))
    assert len(ours) == steps
    for mine, reference in zip(ours[1:], theirs):  # the same trajectory, to float32 round-off (relative 1e-4)
        assert (mine - reference).abs().max() <= 1e-4 * reference.abs().max() + 1e-5
    expected = ((theirs[-1] + 1) / 2).clamp(0, 1)  # our sample() returns images in [0, 1]
    # the last step divides x_t by sqrt(abar_t); this random network's x_t grows to ~100s, so allow the
    # same relative round-off on the scale of the last x_t
    assert (got - expected).abs().max() <= 1e-4 * theirs[-2].abs().max()


def test_dpm_solver_pp_first_order_is_ddim_and_last_step_returns_x0():
    schedule = linear_schedule()
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    t, t_prev = 500, 480
    x0 = predict_x0(schedule, x_t, eps, t, clip=False)
    # DDIM (eta 0) written directly: sqrt(abar') x0 + sqrt(1 - abar') eps
    a, a_prev = schedule.abar(t), schedule.abar(t_prev)
    ddim = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * (x_t - a.sqrt() * x0) / (1 - a).sqrt()
    assert torch.allclose(dpm_solver_pp_step(schedule, x_t, x0, t, t_prev), ddim, atol=1e-5)
    assert torch.equal(dpm_solver_pp_step(schedule, x_t, x0, 0, -1), x0)
    # the second-order correction uses the previous prediction: a different one moves the result
    assert not torch.allclose(dpm_solver_pp_step(schedule, x_t, x0, t, t_prev, previous=(520, x0 * 0.5)), ddim)
    assert torch.allclose(dpm_solver_pp_step(schedule, x_t, x0, t, t_prev, previous=(520, x0)), ddim, atol=1e-5)


def test_unknown_sampler_and_bad_timesteps_are_refused():
    with pytest.raises(ValueError, match="dpm\\+\\+"):
        sample(_tiny_random_unet(), 1, sampler="euler")
    with pytest.raises(ValueError, match="decreasing"):
        sample(_tiny_random_unet(), 1, sampler="dpm++", timesteps=[10, 500])
    with pytest.raises(ValueError, match="decreasing"):
        sample(_tiny_random_unet(), 1, sampler="dpm++", timesteps=[1000, 500])
