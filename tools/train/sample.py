"""Images from the exported weights file, in PyTorch (the same Euler + CFG as the C engine's SD3
path), for watching a run and for `dit score`:

  sample.py [--weights weights/default.safetensors] --out DIR [-p PROMPT ...] [--seed 0]
            [--steps N] [--cfg-scale S] [--shift K]   (defaults: the file's dit.* metadata)

Writes DIR/NNN.png and DIR/prompts.txt (one "file<TAB>prompt" a line).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import make_golden as G  # noqa: E402

PROMPTS = [
    "a large red circle",
    "a small blue square left of a large yellow triangle",
    "a green star above a purple ring",
    "a striped orange square",
    "a white cross in front of a black circle",
    "a dotted red triangle right of an outlined green circle",
]


@torch.no_grad()
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weights/default.safetensors")
    p.add_argument("--out", required=True)
    p.add_argument("-p", "--prompt", action="append")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int)
    p.add_argument("--cfg-scale", dest="cfg_scale", type=float)
    p.add_argument("--shift", type=float)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--score", metavar="DIT", help="score each image with `DIT score` (the checker) and print the tallies")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ms = G.Models(a.weights, dtypes=(torch.float32,))
    text, dit, vae = ms.m[torch.float32]
    meta = ms.meta
    steps = a.steps or int(meta.get("dit.steps", 20))
    cfg = a.cfg_scale if a.cfg_scale is not None else float(meta.get("dit.cfg_scale", 4.0))
    shift = a.shift if a.shift is not None else float(meta.get("dit.shift", 1.0))
    size = int(meta.get("dit.height", 128))
    shift_f, scale_f = float(meta["vae.shift_factor"]), float(meta["vae.scaling_factor"])
    prompts = a.prompt or PROMPTS
    s = size // vae.scale
    g = torch.Generator().manual_seed(a.seed)
    noise = torch.randn(len(prompts), ms.dit_cfg["in_ch"], s, s, generator=g)
    lat = C.sample(dit, text, ms.tok, prompts, noise, steps=steps, cfg=cfg, shift=shift)
    img = vae.decode(lat / scale_f + shift_f)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "prompts.txt"), "w") as f:
        for i, pr in enumerate(prompts):
            name = f"{i:03d}.png"
            C.write_png(os.path.join(a.out, name), C.to_uint8(img[i]))
            f.write(f"{name}\t{pr}\n")
    print(f"{len(prompts)} images ({steps} steps, cfg {cfg}, shift {shift}) -> {a.out}")
    if a.score:
        import vae_eval as V
        res = [V.score(a.score, os.path.join(a.out, f"{i:03d}.png"), pr) for i, pr in enumerate(prompts)]
        res = [r for r in res if r]
        if res:
            print(f"checker on the samples: all-correct {sum(r['all_correct'] for r in res)}/{len(res)}; " + ", ".join(
                f"{k} {sum(r[k][0] for r in res if k in r)}/{sum(r[k][1] for r in res if k in r)}"
                for k in V.TALLIES if sum(r[k][1] for r in res if k in r)))


if __name__ == "__main__":
    main()
