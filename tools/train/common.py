"""Shared pieces of the training tools: the dataset files, seeds, devices, checkpoints, PNG output,
EMA and the flow-matching sampler used for previews."""
import json
import os
import random
import struct
import time
import zlib

import numpy as np
import torch

import model as M


# ---------------------------------------------------------------------------------------------
# Dataset: PREFIX.rgb (N x H x W x 3 uint8, row-major HWC, no header) + PREFIX.jsonl (one object a
# line: {"index": i, "captions": [...], ...}), as `dit scene --dataset PREFIX` writes them.
# ---------------------------------------------------------------------------------------------

class Dataset:
    def __init__(self, prefix, size):
        self.prefix, self.size = prefix, size
        with open(prefix + ".jsonl") as f:
            rows = [json.loads(l) for l in f if l.strip()]
        rows.sort(key=lambda r: r.get("index", 0))
        self.captions = [list(r["captions"]) for r in rows]
        self.objects = [r.get("objects") for r in rows]
        if any(not c for c in self.captions):
            raise ValueError(f"{prefix}.jsonl: an image without captions")
        n_bytes = os.path.getsize(prefix + ".rgb")
        per = size * size * 3
        if n_bytes != per * len(rows):
            raise ValueError(f"{prefix}.rgb: {n_bytes} bytes, expected {len(rows)} images of {size}x{size}x3")
        self.images = np.memmap(prefix + ".rgb", dtype=np.uint8, mode="r", shape=(len(rows), size, size, 3))

    def __len__(self):
        return len(self.captions)

    def words(self):
        """Every word of every caption (normalised as the tokenizer does)."""
        ws = set()
        for caps in self.captions:
            for c in caps:
                ws.update(M.normalize_words(c))
        return ws

    def batch_images(self, idx, crop=None, rng=None):
        """uint8 HWC images -> float [B, 3, h, w] in [-1, 1]; optional random square crops."""
        x = np.stack([self.images[i] for i in idx])
        if crop and crop < self.size:
            out = np.empty((len(idx), crop, crop, 3), dtype=np.uint8)
            for k in range(len(idx)):
                r, c = rng.integers(0, self.size - crop + 1, size=2)
                out[k] = x[k, r:r + crop, c:c + crop]
            x = out
        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def load_vocab(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Reproducibility and devices
# ---------------------------------------------------------------------------------------------

def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def step_rng(seed, step):
    """Per-step generators derived from (seed, step): a resumed run draws the same batches and
    noise as an uninterrupted one. Noise is drawn on the CPU and moved, so it is the same on any device."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2 ** 63))
    return np.random.default_rng([seed, step]), g


def setup_device(name, threads):
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(name)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def autocast(dev, bf16):
    """bf16 autocast on the device (CPU or CUDA), or a no-op context."""
    if not bf16:
        return torch.autocast(dev.type, enabled=False)
    return torch.autocast(dev.type, dtype=torch.bfloat16)


# ---------------------------------------------------------------------------------------------
# Checkpoints (atomic writes) and timing
# ---------------------------------------------------------------------------------------------

def save_ckpt(path, obj):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_ckpt(path):
    return torch.load(path, map_location="cpu")


class Budget:
    """Stops a loop at a step count or after a number of minutes (0 = no limit)."""

    def __init__(self, minutes):
        self.t0 = time.time()
        self.limit = minutes * 60.0 if minutes else None

    def over(self):
        return self.limit is not None and time.time() - self.t0 >= self.limit

    def elapsed(self):
        return time.time() - self.t0


class EMA:
    """Exponential moving average of parameters (and buffers copied as they are)."""

    def __init__(self, modules, decay):
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone().float() for p in self.params]

    @torch.no_grad()
    def update(self, step):
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up: early weights are forgotten fast
        torch._foreach_mul_(self.shadow, d)
        torch._foreach_add_(self.shadow, [p.detach().float() for p in self.params], alpha=1 - d)

    def state(self):
        return [s.cpu() for s in self.shadow]

    def load(self, tensors):
        for s, t in zip(self.shadow, tensors):
            s.copy_(t)

    @torch.no_grad()
    def copy_to(self, modules):
        ps = [p for m in modules for p in m.parameters()]
        for p, s in zip(ps, self.shadow):
            p.copy_(s.to(p.dtype))


# ---------------------------------------------------------------------------------------------
# PNG output (8-bit RGB, zlib), so `dit score` can read what we write
# ---------------------------------------------------------------------------------------------

def write_png(path, img):
    """img: uint8 array [H, W, 3]."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def read_png(path):
    """8-bit non-interlaced PNG (gray, RGB, RGBA; filters 0-4) -> uint8 [H, W, 3]."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    ch = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or ch is None or interlace:
        raise ValueError(f"{path}: only 8-bit non-interlaced gray/RGB/RGBA PNGs")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    for r in range(h):
        ft, line = raw[r, 0], raw[r, 1:].astype(np.int32)
        prev = out[r - 1] if r else np.zeros(w * ch, np.int32)
        if ft == 0:
            cur = line
        elif ft == 2:  # Up
            cur = (line + prev) & 255
        elif ft == 1:  # Sub: a running sum along the row, per channel
            cur = (np.cumsum(line.reshape(w, ch), axis=0) & 255).reshape(-1)
        elif ft in (3, 4):  # Average, Paeth: sequential along the row, vectorised over channels
            L, P = line.reshape(w, ch), prev.reshape(w, ch)
            cur2 = np.zeros((w, ch), np.int32)
            a = np.zeros(ch, np.int32)
            c = np.zeros(ch, np.int32)
            for x in range(w):
                b = P[x]
                if ft == 3:
                    pr = (a + b) >> 1
                else:
                    p_ = a + b - c
                    pa, pb, pc = np.abs(p_ - a), np.abs(p_ - b), np.abs(p_ - c)
                    pr = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                a = (L[x] + pr) & 255
                cur2[x] = a
                c = b
            cur = cur2.reshape(-1)
        else:
            raise ValueError(f"{path}: bad filter {ft}")
        out[r] = cur
    img = out.astype(np.uint8).reshape(h, w, ch)
    if ch in (1, 2):
        img = np.repeat(img[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def to_uint8(x):
    """[3, H, W] in [-1, 1] -> uint8 [H, W, 3], truncated as sd3.5 / the C engine do."""
    u = ((x.float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)
    return u.permute(1, 2, 0).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# Flow-matching schedule and sampler (the C engine's SD3 Euler + CFG, golden README section 8)
# ---------------------------------------------------------------------------------------------

def shift_sigma(s, shift):
    return shift * s / (1 + (shift - 1) * s)


def sd3_sigmas(steps, shift):
    """sigma(ts) for ts = linspace(1000 sigma(1000), 1000 sigma(1), steps), then 0 (sd3 get_sigmas)."""
    smax, smin = shift_sigma(1.0, shift), shift_sigma(1 / 1000.0, shift)
    ts = np.linspace(1000 * smax, 1000 * smin, steps, dtype=np.float32)
    return [float(shift_sigma(t / 1000.0, shift)) for t in ts] + [0.0]


@torch.no_grad()
def sample(dit, text, tok, prompts, noise, steps=20, cfg=4.0, shift=1.0):
    """Euler with classifier-free guidance on x0 = x - v sigma. noise [B, C, h, w] -> model latents."""
    dev = noise.device
    ids = tok.batch(prompts).to(dev)
    empty = tok.batch([""] * len(prompts)).to(dev)
    ctx_c, pool_c = text(ids)
    ctx_u, pool_u = text(empty)
    sig = sd3_sigmas(steps, shift)
    x = noise * sig[0]
    B = x.shape[0]
    for k in range(steps):
        s = sig[k]
        t = torch.full((2 * B,), 1000.0 * s, device=dev)
        v = dit(torch.cat([x, x]), t, torch.cat([ctx_c, ctx_u]), torch.cat([pool_c, pool_u]))
        den = torch.cat([x, x]) - v * s
        d_c, d_u = den[:B], den[B:]
        den = d_u + (d_c - d_u) * cfg
        x = x + (x - den) / s * (sig[k + 1] - s)
    return x
