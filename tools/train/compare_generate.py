"""End to end: `dit generate` (word tokenizer, text encoder, MM-DiT, Euler + CFG, VAE, 8-bit PNG) against
the same pipeline in PyTorch (sample.py's: float32, torch.randn noise on the CPU = `--rng cpu`):

  compare_generate.py [--weights weights/default.safetensors] [--dit build/dit] [--f32-max 1] [--bf16-max 24]

Prints, per prompt and seed, the largest and mean difference in 8-bit levels of the C engine's f32 and
bf16 images from PyTorch's; exits 1 when one is above its bound (f32: truncation at a level boundary
gives 1; bf16: its rounding, measured at 8-12 levels at most with a 15-minute model).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import make_golden as G  # noqa: E402

CASES = [("a large red circle", 0), ("a small blue square left of a large yellow triangle", 1),
         ("two striped green stars above a dotted white ring", 2)]


@torch.no_grad()
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weights/default.safetensors")
    p.add_argument("--dit", default="build/dit")
    p.add_argument("--f32-max", dest="f32_max", type=int, default=1)
    p.add_argument("--bf16-max", dest="bf16_max", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ms = G.Models(a.weights, dtypes=(torch.float32,))
    text, dit, vae = ms.m[torch.float32]
    meta = ms.meta
    steps, cfg, shift = int(meta["dit.steps"]), float(meta["dit.cfg_scale"]), float(meta["dit.shift"])
    size = int(meta["dit.height"])
    sf, sc = float(meta["vae.shift_factor"]), float(meta["vae.scaling_factor"])
    s = size // vae.scale
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for prompt, seed in CASES:
            noise = torch.randn(1, ms.dit_cfg["in_ch"], s, s, generator=torch.Generator().manual_seed(seed))
            lat = C.sample(dit, text, ms.tok, [prompt], noise, steps=steps, cfg=cfg, shift=shift)
            ref = C.to_uint8(vae.decode(lat / sc + sf)[0]).astype(int)
            line = []
            for prec, bound in (("f32", a.f32_max), ("bf16", a.bf16_max)):
                out = os.path.join(tmp, prec + ".png")
                r = subprocess.run([a.dit, "generate", "-q", "-m", a.weights, "-p", prompt, "-s", str(seed), "--rng", "cpu",
                                    "--precision", prec, "-o", out], capture_output=True, text=True)
                if r.returncode:
                    print(f"dit generate failed ({prec}): {r.stderr.strip()}")
                    bad += 1
                    continue
                d = np.abs(C.read_png(out).astype(int) - ref)
                ok = d.max() <= bound
                bad += not ok
                line.append(f"{prec} max {d.max()} mean {d.mean():.3f} (bound {bound}) {'ok' if ok else 'FAIL'}")
            print(f"seed {seed} {prompt!r}: " + "; ".join(line))
    print("PASS" if not bad else "FAIL")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
