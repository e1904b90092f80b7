"""Training stages of the embedded default model (tools/train/README.md).

  train.py vocab   --data PREFIX --out vocab.json [--words FILE]
  train.py vae     --data PREFIX --out DIR        (AutoencoderKL: L1 + L2 + tiny KL, random crops)
  train.py latents --data PREFIX --vae DIR --out DIR   (posterior means + shift/scaling statistics)
  train.py dit     --data PREFIX --latents DIR --vocab vocab.json --out DIR
                   (MM-DiT + CLIP text encoder from scratch, SD3 rectified flow, CFG dropout, EMA)

Every stage is resumable: DIR/ckpt.pt holds the weights, the optimizer, the EMA and the step; a
run continues from it until --steps (total over all runs) or --minutes (this run) is reached.
Batches and noise come from generators seeded by (seed, step), so an interrupted and resumed run
draws what an uninterrupted one would. --device cuda works (everything is device-agnostic).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import model as M  # noqa: E402


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def config_from(args, base=None):
    cfg = dict(M.DEFAULT_CONFIG if base is None else base)
    for k in M.DEFAULT_CONFIG:
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    return cfg


def lr_at(step, lr, warmup, total=0, decay=0):
    """Linear warm-up over `warmup` steps, constant, then (decay > 0) a linear cool-down to 0 over the
    last `decay` steps before `total` (warm-up / stable / decay: the cool-down gives most of the late gain)."""
    f = min(1.0, (step + 1) / max(1, warmup))
    if decay > 0 and step >= total - decay:
        f = min(f, max(0.0, (total - step) / decay))
    return lr * f


# ---------------------------------------------------------------------------------------------
# vocab
# ---------------------------------------------------------------------------------------------

def cmd_vocab(a):
    if a.words:  # `dit scene --vocab` output: one word a line (normalised: "," gives no word)
        with open(a.words) as f:
            words = {w for line in f for w in M.normalize_words(line)}
    else:
        words = C.Dataset(a.data, a.image_size).words()
    vocab = M.make_vocab(words)
    with open(a.out, "w") as f:
        json.dump(vocab, f)
    log(f"vocab: {len(vocab)} entries -> {a.out}")


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------

def vae_loss(vae, x, gen, kl_weight):
    mom = vae.encode(x)
    mean, logvar = mom.chunk(2, dim=1)
    logvar = logvar.clamp(-30, 20)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen).to(mean.device, mean.dtype)
    rec = vae.decode(z)
    l1 = (rec.float() - x).abs().mean()
    l2 = (rec.float() - x).pow(2).mean()
    # KL(q || N(0, 1)) per latent element; tiny weight: it only keeps the posterior from collapsing
    # to a point (the decoder sees sampled latents) and the latents bounded
    kl = 0.5 * (mean.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).mean()
    return l1 + l2 + kl_weight * kl, (l1.item(), l2.item(), kl.item())


def cmd_vae(a):
    dev = C.setup_device(a.device, a.threads)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "ckpt.pt")
    data = C.Dataset(a.data, a.image_size)
    if os.path.exists(ck_path):
        ck = C.load_ckpt(ck_path)
        cfg = ck["config"]
        log(f"vae: resuming {ck_path} at step {ck['step']}")
    else:
        ck, cfg = None, config_from(a)
    C.seed_everything(a.seed)
    vae = M.build_vae(cfg).to(dev)
    opt = torch.optim.AdamW(vae.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    if ck:
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
    if step >= a.steps:
        log(f"vae: {ck_path} is at step {step} >= --steps {a.steps}: nothing to do")
        return
    n_par = sum(p.numel() for p in vae.parameters())
    log(f"vae: {n_par} parameters, {len(data)} images, batch {a.batch}, crop {a.crop}, device {dev}, "
        f"threads {torch.get_num_threads()}, bf16 {a.bf16}")
    budget = C.Budget(a.minutes)
    last_save, t_log, n_log, acc = time.time(), time.time(), 0, np.zeros(4)

    def save():
        C.save_ckpt(ck_path, {"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step, "config": cfg,
                              "seed": a.seed, "args": vars(a)})

    while step < a.steps and not budget.over():
        rng, gen = C.step_rng(a.seed, step)
        idx = rng.integers(0, len(data), size=a.batch)
        x = data.batch_images(idx, a.crop, rng).to(dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup)
        with C.autocast(dev, a.bf16):
            loss, parts = vae_loss(vae, x, gen, a.kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        acc += np.array([loss.item(), *parts])
        n_log += 1
        if step % a.log_every == 0 or step == a.steps:
            dt = time.time() - t_log
            m = acc / n_log
            log(f"vae step {step}: loss {m[0]:.4f} (l1 {m[1]:.4f} l2 {m[2]:.5f} kl {m[3]:.3f}) "
                f"{n_log * a.batch / dt:.1f} img/s ({n_log / dt:.2f} it/s)")
            t_log, n_log, acc = time.time(), 0, np.zeros(4)
        if time.time() - last_save > a.save_minutes * 60:
            save()
            last_save = time.time()
    save()
    log(f"vae: stopped at step {step} after {budget.elapsed() / 60:.1f} min -> {ck_path}")


# ---------------------------------------------------------------------------------------------
# latents
# ---------------------------------------------------------------------------------------------

def load_vae(path, dev):
    ck = C.load_ckpt(os.path.join(path, "ckpt.pt") if os.path.isdir(path) else path)
    vae = M.build_vae(ck["config"]).to(dev)
    vae.load_state_dict(ck["vae"])
    vae.eval()
    return vae, ck


@torch.no_grad()
def cmd_latents(a):
    """Posterior means of every image (float16, [N, z, h, w]) and the normalisation that gives the
    DiT ~unit variance: model latent = (raw - shift) * scaling, shift = mean, scaling = 1 / std
    over all latent values (metadata vae.shift_factor / vae.scaling_factor)."""
    dev = C.setup_device(a.device, a.threads)
    vae, ck = load_vae(a.vae, dev)
    data = C.Dataset(a.data, a.image_size)
    os.makedirs(a.out, exist_ok=True)
    s = a.image_size // vae.scale
    out_path = os.path.join(a.out, "latents.f16")
    lat = np.lib.format.open_memmap(out_path + ".npy.tmp", mode="w+", dtype=np.float16, shape=(len(data), vae.z, s, s))
    t0 = time.time()
    s1 = s2 = 0.0
    for i in range(0, len(data), a.batch):
        idx = np.arange(i, min(i + a.batch, len(data)))
        x = data.batch_images(idx).to(dev)
        with C.autocast(dev, a.bf16):
            mean = vae.encode(x)[:, : vae.z].float()
        lat[i:i + len(idx)] = mean.cpu().numpy().astype(np.float16)
        s1 += mean.double().sum().item()
        s2 += mean.double().pow(2).sum().item()
        if (i // a.batch) % 50 == 0:
            log(f"latents: {i + len(idx)}/{len(data)} ({(i + len(idx)) / (time.time() - t0):.1f} img/s)")
    lat.flush()
    del lat
    os.replace(out_path + ".npy.tmp", out_path + ".npy")
    n = len(data) * vae.z * s * s
    mean = s1 / n
    std = math.sqrt(max(s2 / n - mean * mean, 1e-12))
    stats = {"shift_factor": mean, "scaling_factor": 1.0 / std, "count": len(data), "z": vae.z, "size": s,
             "vae_step": ck["step"], "seconds": time.time() - t0}
    with open(os.path.join(a.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    log(f"latents: {len(data)} in {time.time() - t0:.0f} s; shift {mean:.5f} scaling {1 / std:.5f}")


# ---------------------------------------------------------------------------------------------
# DiT + text encoder
# ---------------------------------------------------------------------------------------------

class Captions:
    """Every caption of every image tokenized once: ids [n_captions, n_pos] + per-image ranges."""

    def __init__(self, data, tok):
        rows, self.start, self.count = [], [], []
        for caps in data.captions:
            self.start.append(len(rows))
            self.count.append(len(caps))
            rows.extend(tok(c) for c in caps)
        self.ids = torch.tensor(rows, dtype=torch.long)
        self.start, self.count = np.array(self.start), np.array(self.count)
        self.empty = torch.tensor(tok(""), dtype=torch.long)

    def pick(self, idx, rng, drop):
        """One random caption per image; with probability drop the empty prompt (for CFG)."""
        k = self.start[idx] + rng.integers(0, 1 << 30, size=len(idx)) % self.count[idx]
        ids = self.ids[torch.from_numpy(k)]
        mask = torch.from_numpy(rng.random(len(idx)) < drop)
        ids[mask] = self.empty
        return ids


def dit_loss(dit, text, x0, ids, gen, a):
    """SD3 rectified flow: x_s = (1 - s) x0 + s eps, target v = eps - x0, model t = 1000 s, s from a
    logit-normal (mean a.ln_mean, std a.ln_std), optionally shifted s' = k s / (1 + (k - 1) s)."""
    B = x0.shape[0]
    dev = x0.device
    s = torch.sigmoid(torch.randn(B, generator=gen) * a.ln_std + a.ln_mean)
    if a.train_shift != 1.0:
        s = C.shift_sigma(s, a.train_shift)
    eps = torch.randn(x0.shape, generator=gen)
    s, eps = s.to(dev), eps.to(dev)
    xs = (1 - s[:, None, None, None]) * x0 + s[:, None, None, None] * eps
    ctx, pooled = text(ids)
    v = dit(xs, 1000.0 * s, ctx, pooled)
    return F.mse_loss(v.float(), eps - x0)


def cmd_dit(a):
    dev = C.setup_device(a.device, a.threads)
    os.makedirs(a.out, exist_ok=True)
    ck_path = os.path.join(a.out, "ckpt.pt")
    vocab = C.load_vocab(a.vocab)
    with open(os.path.join(a.latents, "stats.json")) as f:
        stats = json.load(f)
    lat = np.load(os.path.join(a.latents, "latents.f16.npy"), mmap_mode="r")
    if os.path.exists(ck_path):
        ck = C.load_ckpt(ck_path)
        cfg = ck["config"]
        if ck["vocab"] != vocab:
            raise SystemExit(f"{a.vocab} differs from the vocabulary the checkpoint was trained with")
        log(f"dit: resuming {ck_path} at step {ck['step']}")
    else:
        ck = None
        cfg = config_from(a)
        cfg["vae_z"] = int(lat.shape[1])
    data = C.Dataset(a.data, cfg["image_size"])
    if len(data) != lat.shape[0]:
        raise SystemExit(f"{a.latents}: {lat.shape[0]} latents for {len(data)} images")
    C.seed_everything(a.seed)
    tok = M.WordTokenizer(vocab, cfg["text_n_pos"])
    text = M.build_text(cfg, len(vocab)).to(dev)
    dit = M.build_dit(cfg).to(dev)
    params = list(dit.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.99), weight_decay=a.weight_decay)
    ema = C.EMA([dit, text], a.ema)
    step = 0
    if ck:
        dit.load_state_dict(ck["dit"])
        text.load_state_dict(ck["text"])
        opt.load_state_dict(ck["opt"])
        ema.load(ck["ema"])
        step = ck["step"]
    if step >= a.steps:
        log(f"dit: {ck_path} is at step {step} >= --steps {a.steps}: nothing to do")
        return
    caps = Captions(data, tok)
    # latents in memory, normalised once: model latent = (raw - shift) * scaling
    x_all = torch.from_numpy(np.asarray(lat, dtype=np.float32))
    x_all.sub_(stats["shift_factor"]).mul_(stats["scaling_factor"])
    n_dit = sum(p.numel() for p in dit.parameters())
    n_txt = sum(p.numel() for p in text.parameters())
    log(f"dit: {n_dit} + text {n_txt} parameters, {len(data)} images ({len(caps.ids)} captions), "
        f"latent {tuple(x_all.shape[1:])}, batch {a.batch}, device {dev}, threads {torch.get_num_threads()}, bf16 {a.bf16}")
    budget = C.Budget(a.minutes)
    last_save, t_log, n_log, acc = time.time(), time.time(), 0, 0.0

    def save():
        C.save_ckpt(ck_path, {"dit": dit.state_dict(), "text": text.state_dict(), "opt": opt.state_dict(),
                              "ema": ema.state(), "step": step, "config": cfg, "vocab": vocab, "stats": stats,
                              "seed": a.seed, "args": vars(a)})

    while step < a.steps and not budget.over():
        rng, gen = C.step_rng(a.seed, step)
        idx = rng.integers(0, len(data), size=a.batch)
        x0 = x_all[torch.from_numpy(idx)].to(dev)
        ids = caps.pick(idx, rng, a.cond_drop).to(dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.warmup, a.steps, a.decay)
        with C.autocast(dev, a.bf16):
            loss = dit_loss(dit, text, x0, ids, gen, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        step += 1
        acc += loss.item()
        n_log += 1
        if step % a.log_every == 0 or step == a.steps:
            dt = time.time() - t_log
            log(f"dit step {step}: loss {acc / n_log:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{n_log * a.batch / dt:.1f} samples/s")
            t_log, n_log, acc = time.time(), 0, 0.0
        if time.time() - last_save > a.save_minutes * 60:
            save()
            last_save = time.time()
    save()
    log(f"dit: stopped at step {step} after {budget.elapsed() / 60:.1f} min -> {ck_path}")


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q):
        q.add_argument("--data", required=True, help="dataset prefix (PREFIX.rgb + PREFIX.jsonl)")
        q.add_argument("--image-size", dest="image_size", type=int, default=M.DEFAULT_CONFIG["image_size"])
        q.add_argument("--device", default="cpu")
        q.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward and backward")

    def train_opts(q, steps, batch, lr, warmup):
        q.add_argument("--out", required=True)
        q.add_argument("--steps", type=int, default=steps, help="total optimizer steps over all runs")
        q.add_argument("--minutes", type=float, default=0, help="time budget of this run (0 = none)")
        q.add_argument("--batch", type=int, default=batch)
        q.add_argument("--lr", type=float, default=lr)
        q.add_argument("--warmup", type=int, default=warmup)
        q.add_argument("--log-every", dest="log_every", type=int, default=50)
        q.add_argument("--save-minutes", dest="save_minutes", type=float, default=10)

    q = sub.add_parser("vocab")
    q.add_argument("--data", required=True)
    q.add_argument("--image-size", dest="image_size", type=int, default=M.DEFAULT_CONFIG["image_size"])
    q.add_argument("--words", help="word list, one a line (dit scene --vocab); default: the captions' words")
    q.add_argument("--out", required=True)

    q = sub.add_parser("vae")
    common(q)
    train_opts(q, 20000, 8, 2e-4, 200)
    q.add_argument("--crop", type=int, default=64, help="random square crops of this size (0 = whole images)")
    q.add_argument("--kl-weight", dest="kl_weight", type=float, default=1e-4)
    q.add_argument("--vae-ch", dest="vae_ch", type=int)
    q.add_argument("--vae-ch-mult", dest="vae_ch_mult", type=lambda s: [int(x) for x in s.split(",")])
    q.add_argument("--vae-res-blocks", dest="vae_res_blocks", type=int)
    q.add_argument("--vae-z", dest="vae_z", type=int)

    q = sub.add_parser("latents")
    common(q)
    q.add_argument("--vae", required=True, help="VAE run folder (its ckpt.pt)")
    q.add_argument("--out", required=True)
    q.add_argument("--batch", type=int, default=32)

    q = sub.add_parser("dit")
    common(q)
    train_opts(q, 200000, 32, 3e-4, 500)
    q.add_argument("--latents", required=True)
    q.add_argument("--vocab", required=True)
    q.add_argument("--ema", type=float, default=0.999)
    q.add_argument("--decay", type=int, default=0,
                   help="linear learning-rate cool-down to 0 over the last DECAY of --steps (0 = none)")
    q.add_argument("--weight-decay", dest="weight_decay", type=float, default=0.0)
    q.add_argument("--cond-drop", dest="cond_drop", type=float, default=0.1, help="empty-prompt probability (CFG)")
    q.add_argument("--ln-mean", dest="ln_mean", type=float, default=0.0)
    q.add_argument("--ln-std", dest="ln_std", type=float, default=1.0)
    q.add_argument("--train-shift", dest="train_shift", type=float, default=1.0)
    for k in ("text_width", "text_layers", "text_heads", "text_mlp", "text_n_pos", "dit_hidden", "dit_depth",
              "dit_patch", "dit_pos_max", "dit_mlp_ratio"):
        q.add_argument("--" + k.replace("_", "-"), dest=k, type=int)

    a = p.parse_args(argv)
    {"vocab": cmd_vocab, "vae": cmd_vae, "latents": cmd_latents, "dit": cmd_dit}[a.cmd](a)


if __name__ == "__main__":
    main()
