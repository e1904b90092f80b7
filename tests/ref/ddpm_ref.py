#!/usr/bin/python3
"""tests/ref/ddpm_ref.py — reference trajectories for tests/test_sampler.c's DDIM/DDPM cases (run by
hand, never at test time). It follows facebookresearch/DiT diffusion/ (create_diffusion("N"),
space_timesteps, SpacedDiffusion, GaussianDiffusion.p_mean_variance / p_sample / ddim_sample with
LEARNED_RANGE variance, clip_denoised=False) and models.forward_with_cfg, written again in numpy
float64 with the same array construction (respaced betas, cumprod, the clipped posterior log
variance, the coefficient tables), with a stand-in eps model in place of DiT: about the exact eps of
data ~ N(mu, 0.5^2) under a closed-form stand-in for alpha_bar, so that x stays O(1) and the
samples depend on every step's noise:

    L(t)    = -(1e-4 (t + 1) + 0.5 (0.02 - 1e-4) / 999 t (t + 1))     (about log alpha_bar(t))
    a, s    = exp(L / 2), sqrt(1 - exp(L))
    mu[c]   = 0.5 (c - 1.5) (label + 1) / 11 + 0.2 tanh(x[c])
    eps[c]  = s (x[c] - a mu[c]) / (0.25 a^2 + s^2)
    var[c]  = 0.9 cos(0.7 x[c] + 0.003 t + 0.5 c + 0.1 label)   (the variance interpolation, in [-1, 1])

on a [4, 2, 2] latent. Noise: tests/ref/philox_ref.py (the cuda generator) or torch's CPU generator.

    /usr/bin/python3 tests/ref/ddpm_ref.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox_ref  # noqa: E402

C, H, W = 4, 2, 2
N = C * H * W
NULL = 10


def space_timesteps(num_timesteps, count):
    # one section (section_counts = str(count))
    frac_stride = 1 if count <= 1 else (num_timesteps - 1) / (count - 1)
    cur, steps = 0.0, []
    for _ in range(count):
        steps.append(round(cur))
        cur += frac_stride
    return set(steps)


class Diffusion:
    """GaussianDiffusion's arrays for the respaced betas (SpacedDiffusion.__init__)."""

    def __init__(self, n_steps, T=1000):
        scale = 1000 / T
        base = np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)
        base_ac = np.cumprod(1.0 - base, axis=0)
        use = space_timesteps(T, n_steps)
        last, betas, self.timestep_map = 1.0, [], []
        for i, ac in enumerate(base_ac):
            if i in use:
                betas.append(1 - ac / last)
                last = ac
                self.timestep_map.append(i)
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        self.ac = np.cumprod(1.0 - b, axis=0)
        self.ac_prev = np.append(1.0, self.ac[:-1])
        self.sqrt_recip_ac = np.sqrt(1.0 / self.ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / self.ac - 1)
        pv = b * (1.0 - self.ac_prev) / (1.0 - self.ac)
        self.plv_clipped = np.log(np.append(pv[1], pv[1:])) if len(pv) > 1 else np.array([0.0])
        self.coef1 = b * np.sqrt(self.ac_prev) / (1.0 - self.ac)
        self.coef2 = (1.0 - self.ac_prev) * np.sqrt(1.0 - b) / (1.0 - self.ac)
        self.n = len(b)


def model(x, t, label):
    c = np.arange(C, dtype=np.float64).reshape(C, 1, 1)
    L = -(1e-4 * (t + 1) + 0.5 * (0.02 - 1e-4) / 999 * t * (t + 1))
    a, s = np.exp(L / 2), np.sqrt(1 - np.exp(L))
    mu = 0.5 * (c - 1.5) * (label + 1) / 11 + 0.2 * np.tanh(x)
    eps = s * (x - a * mu) / (0.25 * a * a + s * s)
    var = 0.9 * np.cos(0.7 * x + 0.003 * t + 0.5 * c + 0.1 * label)
    return np.concatenate([eps, var], axis=0)


def guided(x, t, label, scale, gch):
    """forward_with_cfg with the first gch channels guided (gch = C: all eps channels); scale 1: one pass."""
    cond = model(x, t, label)
    if scale == 1.0:
        return cond
    unc = model(x, t, NULL)
    out = cond.copy()
    out[:gch] = unc[:gch] + scale * (cond[:gch] - unc[:gch])
    return out


def sample(kind, n_steps, label, scale, gch, x, noise_fn):
    d = Diffusion(n_steps)
    for k in reversed(range(d.n)):
        t = d.timestep_map[k]
        out = guided(x, t, label, scale, gch)
        eps, v = out[:C], out[C:]
        x0 = d.sqrt_recip_ac[k] * x - d.sqrt_recipm1_ac[k] * eps  # _predict_xstart_from_eps
        if kind == "ddim":
            eps2 = (d.sqrt_recip_ac[k] * x - x0) / d.sqrt_recipm1_ac[k]  # _predict_eps_from_xstart
            x = x0 * np.sqrt(d.ac_prev[k]) + np.sqrt(1 - d.ac_prev[k]) * eps2
        else:
            frac = (v + 1) / 2
            logvar = frac * np.log(d.betas[k]) + (1 - frac) * d.plv_clipped[k]
            mean = d.coef1[k] * x0 + d.coef2[k] * x
            x = mean + (np.exp(0.5 * logvar) * noise_fn() if k != 0 else 0.0)
    return x


def f9(v):
    return ", ".join("%.9gf" % a for a in np.asarray(v).reshape(-1))


if __name__ == "__main__":
    for n in (1, 7, 50, 250, 999, 1000):
        ts = sorted(space_timesteps(1000, n))
        print("space_timesteps(1000, %d): n %d sum %d sumsq %d first %s last %s" % (n, len(ts), sum(ts), sum(v * v for v in ts), ts[:4], ts[-4:]))
    print("space_timesteps(1000, 7):", sorted(space_timesteps(1000, 7)))
    print("space_timesteps(1000, 12):", sorted(space_timesteps(1000, 12)))
    print("space_timesteps(4000, 13):", sorted(space_timesteps(4000, 13)))
    d = Diffusion(1000)
    print("alphas_cumprod T=1000: [0] %.17g [1] %.17g [499] %.17g [999] %.17g" % (d.ac[0], d.ac[1], d.ac[499], d.ac[999]))
    d = Diffusion(250)
    print("respaced 250: ac[0] %.17g ac[249] %.17g" % (d.ac[0], d.ac[249]))

    # case 1: DDIM 250 steps, CFG 4 on all eps channels, label 3, x_T = philox(11).randn(16)
    x = philox_ref.Philox(11).randn(N).astype(np.float64).reshape(C, H, W)
    print("x_T philox 11:", f9(x))
    print("ddim250 cfg4 all:", f9(sample("ddim", 250, 3, 4.0, C, x, None)))
    # case 2: the same with forward_with_cfg's 3 channels
    print("ddim250 cfg4 ch3:", f9(sample("ddim", 250, 3, 4.0, 3, x, None)))
    # case 3: DDPM 50 steps, no guidance (one pass), label 7, philox seed 5: x_T, then a randn(16) per step
    g = philox_ref.Philox(5)
    x = g.randn(N).astype(np.float64).reshape(C, H, W)
    print("ddpm50 none philox5:", f9(sample("ddpm", 50, 7, 1.0, C, x, lambda: g.randn(N).astype(np.float64).reshape(C, H, W))))
    # case 4: DiT sample.py on the CPU: DDPM 25 steps, CFG 4 on 3 channels, label 2, torch CPU seed 3,
    # x_T = randn(16), each step's noise the first half of randn(32) (the doubled CFG batch)
    import torch
    tg = torch.Generator().manual_seed(3)
    x = torch.randn(N, generator=tg).double().numpy().reshape(C, H, W)
    print("ddpm25 cfg4 ch3 cpu3 batch2:",
          f9(sample("ddpm", 25, 2, 4.0, 3, x, lambda: torch.randn(2 * N, generator=tg)[:N].double().numpy().reshape(C, H, W))))
