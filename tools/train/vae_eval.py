"""How well the VAE keeps what the checker looks at: reconstruct dataset images (encode -> posterior
mean -> decode), report PSNR, and when the C checker is there (`dit score IMAGE.png -p PROMPT --json`)
the share of images whose caption it scores all-correct, on the originals and on the reconstructions.

  vae_eval.py --data PREFIX (--weights FILE | --vae RUN_DIR) [--count 200] [--out DIR] [--dit build/dit]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import make_golden as G  # noqa: E402
import train as T  # noqa: E402


def find_key(obj, key):
    """The first value of key anywhere in a JSON object, or None."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find_key(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find_key(v, key)
            if r is not None:
                return r
    return None


TALLIES = ("object", "shape", "colour", "size", "fill", "count", "relation", "occlusion")


def score(dit_bin, png, prompt):
    """-> {"all_correct": 0/1, "<tally>": (ok, n), ...}, or None when `dit score` is not available or
    says nothing usable."""
    try:
        r = subprocess.run([dit_bin, "score", png, "-p", prompt, "--json"], capture_output=True, text=True, timeout=60)
        js = json.loads(r.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    v = find_key(js, "all_correct")
    if v is None:
        return None
    out = {"all_correct": int(bool(v))}
    sc = find_key(js, "score") or {}
    for k in TALLIES:
        t = sc.get(k) if isinstance(sc, dict) else None
        if isinstance(t, dict) and "ok" in t and "n" in t:
            out[k] = (t["ok"], t["n"])
    return out


@torch.no_grad()
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--weights")
    p.add_argument("--vae", help="VAE run folder (instead of --weights)")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--first", type=int, default=0, help="first image index (-1: the last --count images)")
    p.add_argument("--out", help="keep the PNGs here (default: a temporary folder)")
    p.add_argument("--dit", default="build/dit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image-size", dest="image_size", type=int, default=128)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.vae:
        vae, _ = T.load_vae(a.vae, torch.device("cpu"))
    else:
        vae = G.Models(a.weights or "weights/default.safetensors", dtypes=(torch.float32,)).m[torch.float32][2]
    data = C.Dataset(a.data, a.image_size)
    first = max(0, len(data) - a.count) if a.first < 0 else a.first
    idx = np.arange(first, min(first + a.count, len(data)))
    if not len(idx):
        raise SystemExit(f"{a.data}: no images from index {first}")
    out = a.out or tempfile.mkdtemp(prefix="vae_eval_")
    os.makedirs(out, exist_ok=True)
    se, n_px = 0.0, 0
    tallies = {"orig": [], "recon": []}
    for s in range(0, len(idx), 16):
        b = idx[s:s + 16]
        x = data.batch_images(b)
        rec = vae.decode(vae.encode(x)[:, : vae.z]).clamp(-1, 1)
        # PSNR on the 8-bit images the C engine would write (truncated)
        u_rec = np.stack([C.to_uint8(r) for r in rec]).astype(np.float64)
        u_org = np.stack([data.images[i] for i in b]).astype(np.float64)
        se += ((u_rec - u_org) ** 2).sum()
        n_px += u_org.size
        for k, i in enumerate(b):
            po, pr = os.path.join(out, f"{i:06d}_orig.png"), os.path.join(out, f"{i:06d}_recon.png")
            C.write_png(po, data.images[i])
            C.write_png(pr, u_rec[k].astype(np.uint8))
            cap = data.captions[i][0]
            for name, path in (("orig", po), ("recon", pr)):
                v = score(a.dit, path, cap)
                if v is not None:
                    tallies[name].append(v)
    psnr = 10 * np.log10(255.0 ** 2 / (se / n_px))
    print(f"{len(idx)} images: reconstruction PSNR {psnr:.2f} dB (8-bit, truncated) -> {out}")
    for name in ("orig", "recon"):
        t = tallies[name]
        if not t:
            print(f"checker: no scores for {name} ({a.dit} score not available?)")
            continue
        n_ok = sum(x["all_correct"] for x in t)
        parts = []
        for k in TALLIES:
            ok = sum(x[k][0] for x in t if k in x)
            n = sum(x[k][1] for x in t if k in x)
            if n:
                parts.append(f"{k} {ok / n:.3f}")
        print(f"checker on {name}: all-correct {n_ok}/{len(t)} = {n_ok / len(t):.3f}; " + ", ".join(parts))

if __name__ == "__main__":
    main()
