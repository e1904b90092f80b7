"""Training-step throughput of each stage on random tensors (no dataset needed):

  bench.py [--threads 2] [--device cpu] [--steps 5] [--stage all|vae|latents|dit]

Prints images/s (VAE training step, VAE encoding) and samples/s (DiT + text encoder training
step), in float32 and under bf16 autocast, for the default geometry of model.py.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import model as M  # noqa: E402
import train as T  # noqa: E402


def timed(fn, steps, dev):
    fn()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(steps):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.time() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--stage", default="all")
    p.add_argument("--vae-batch", dest="vae_batch", type=int, default=8)
    p.add_argument("--dit-batch", dest="dit_batch", type=int, default=32)
    a = p.parse_args(argv)
    dev = C.setup_device(a.device, a.threads)
    torch.manual_seed(0)
    cfg = dict(M.DEFAULT_CONFIG)
    S = cfg["image_size"]
    print(f"device {dev}, threads {torch.get_num_threads()}, image {S}")
    gen = torch.Generator().manual_seed(0)
    if a.stage in ("all", "vae"):
        vae = M.build_vae(cfg).to(dev)
        opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
        for crop in (64, S):
            x = torch.rand(a.vae_batch, 3, crop, crop, device=dev) * 2 - 1
            for bf in (False, True):
                def step():
                    with C.autocast(dev, bf):
                        loss, _ = T.vae_loss(vae, x, gen, 1e-4)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                s = timed(step, a.steps, dev)
                print(f"vae train  crop {crop:3d} batch {a.vae_batch} bf16 {int(bf)}: {1 / s:6.2f} it/s "
                      f"{a.vae_batch / s:7.1f} img/s")
    if a.stage in ("all", "latents"):
        vae = M.build_vae(cfg).to(dev).eval()
        x = torch.rand(32, 3, S, S, device=dev) * 2 - 1
        for bf in (False, True):
            def enc():
                with torch.no_grad(), C.autocast(dev, bf):
                    vae.encode(x)
            s = timed(enc, max(1, a.steps // 2), dev)
            print(f"vae encode {S}px batch 32 bf16 {int(bf)}: {32 / s:7.1f} img/s")
    if a.stage in ("all", "dit"):
        V = 64
        text = M.build_text(cfg, V).to(dev)
        dit = M.build_dit(cfg).to(dev)
        for m in (dit, text):  # leave adaLN-zero: make every path do work
            for q in m.parameters():
                q.data.normal_(0, 0.02)
        params = list(dit.parameters()) + list(text.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4)
        ema = C.EMA([dit, text], 0.999)
        s_lat = S // 2 ** (len(cfg["vae_ch_mult"]) - 1)
        x0 = torch.randn(a.dit_batch, cfg["vae_z"], s_lat, s_lat, device=dev)
        ids = torch.randint(0, V, (a.dit_batch, cfg["text_n_pos"]), device=dev)

        class A:
            ln_mean, ln_std, train_shift = 0.0, 1.0, 1.0

        for bf in (False, True):
            def step():
                with C.autocast(dev, bf):
                    loss = T.dit_loss(dit, text, x0, ids, gen, A)
                opt.zero_grad()
                loss.backward()
                opt.step()
                ema.update(1000)
            s = timed(step, a.steps, dev)
            print(f"dit train  batch {a.dit_batch} ({s_lat}x{s_lat} latent) bf16 {int(bf)}: {1 / s:6.2f} it/s "
                  f"{a.dit_batch / s:7.1f} samples/s")


if __name__ == "__main__":
    main()
