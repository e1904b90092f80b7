#!/usr/bin/env python3
"""Reference numbers for tests/test_sampler.c t_dpmpp_reference: k-diffusion's sample_dpmpp_2m
(k_diffusion/sampling.py, as the sd3.5 reference's sd3_impls.py sample_dpmpp_2m) in float64, on
the stand-in flow model v = x (0.5 + sigma) + 0.2 sin(3x) - 0.3 (denoised = x - sigma v), over the
sigmas below, from x = [1, -2, 0.5, 3]. Run by hand; its output is pasted into the test."""
import math

def model(x, sigma):
    return [xi - sigma * (xi * (0.5 + sigma) + 0.2 * math.sin(3 * xi) - 0.3) for xi in x]

def sample_dpmpp_2m(x, sigmas):
    t_fn = lambda s: -math.log(s) if s > 0 else math.inf
    old = None
    for i in range(len(sigmas) - 1):
        d = model(x, sigmas[i])
        t, t_next = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
        h = t_next - t
        ratio = math.exp(-t_next) / math.exp(-t)
        em = -math.expm1(-h)
        if old is None or sigmas[i + 1] == 0:
            x = [ratio * xi + em * di for xi, di in zip(x, d)]
        else:
            h_last = t - t_fn(sigmas[i - 1])
            r = h_last / h
            dd = [(1 + 1 / (2 * r)) * di - (1 / (2 * r)) * oi for di, oi in zip(d, old)]
            x = [ratio * xi + em * di for xi, di in zip(x, dd)]
        old = d
    return x

import struct
f32 = lambda v: struct.unpack('f', struct.pack('f', v))[0]
sigmas = [f32(s) for s in (1, 0.9, 0.75, 0.5, 0.3, 0.1, 0.02, 0)]
print(['%.9g' % v for v in sample_dpmpp_2m([1, -2, 0.5, 3], sigmas)])
print(['%.9g' % v for v in sample_dpmpp_2m([1, -2, 0.5, 3], sigmas[:-1] + [f32(0.005)])])
