"""Write the embedded default model as ONE SD3-style single-file safetensors (F16 tensors):

  model.diffusion_model.*            MM-DiT (EMA weights)
  text_encoders.clip.transformer.*   CLIP text encoder (EMA weights)
  first_stage_model.*                AutoencoderKL
  __metadata__                       text.vocab / text.heads / text.hidden_act, dit.text = clip-words,
                                     vae.shift_factor / vae.scaling_factor, generation defaults
                                     (dit.steps, dit.cfg_scale, dit.shift, dit.sampler, dit.width,
                                     dit.height) and provenance.

  export.py --vae runs/vae --dit runs/dit --out weights/default.safetensors
"""
import argparse
import datetime
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import model as M  # noqa: E402
import st  # noqa: E402

MAX_BYTES = 16_000_000


def build_from_checkpoints(vae_dir, dit_dir, use_ema=True):
    """-> (dit, text, vae, dit checkpoint, vae checkpoint), the DiT and text encoder holding the EMA."""
    vck = C.load_ckpt(os.path.join(vae_dir, "ckpt.pt"))
    dck = C.load_ckpt(os.path.join(dit_dir, "ckpt.pt"))
    cfg = dck["config"]
    vae = M.build_vae(vck["config"])
    vae.load_state_dict(vck["vae"])
    dit = M.build_dit(cfg)
    dit.load_state_dict(dck["dit"])
    text = M.build_text(cfg, len(dck["vocab"]))
    text.load_state_dict(dck["text"])
    if use_ema:
        ema = C.EMA([dit, text], 0.0)
        ema.load(dck["ema"])
        ema.copy_to([dit, text])
    if vck["config"]["vae_z"] != cfg["vae_z"]:
        raise SystemExit(f"VAE z {vck['config']['vae_z']} differs from the DiT's {cfg['vae_z']}")
    return dit, text, vae, dck, vck


def to_f16(name, t):
    a = t.detach().cpu().double().numpy()
    h = a.astype(np.float16)
    if not np.all(np.isfinite(h)):
        raise SystemExit(f"{name}: values outside the F16 range (max |x| {np.abs(a).max():g})")
    return h


def export(dit, text, vae, vocab, stats, cfg, out, defaults, provenance):
    tensors = {k: to_f16(k, v) for k, v in M.checkpoint_tensors(dit, text, vae).items()}
    meta = {
        "text.vocab": json.dumps(vocab, separators=(",", ":")),
        "text.heads": str(cfg["text_heads"]),
        "text.hidden_act": "gelu",
        "dit.text": "clip-words",
        "dit.heads": str(cfg["dit_hidden"] // 64),
        "vae.shift_factor": repr(float(stats["shift_factor"])),
        "vae.scaling_factor": repr(float(stats["scaling_factor"])),
        "dit.steps": str(defaults["steps"]),
        "dit.cfg_scale": repr(float(defaults["cfg_scale"])),
        "dit.shift": repr(float(defaults["shift"])),
        "dit.sampler": defaults["sampler"],
        "dit.width": str(cfg["image_size"]),
        "dit.height": str(cfg["image_size"]),
    }
    meta.update(provenance)
    n = st.save(out, tensors, meta)
    return n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True, help="VAE run folder")
    p.add_argument("--dit", required=True, help="DiT run folder")
    p.add_argument("--out", default="weights/default.safetensors")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg-scale", dest="cfg_scale", type=float, default=4.0)
    p.add_argument("--shift", type=float, default=1.0)
    p.add_argument("--sampler", default="euler")
    p.add_argument("--no-ema", dest="ema", action="store_false")
    p.add_argument("--max-bytes", dest="max_bytes", type=int, default=MAX_BYTES)
    a = p.parse_args(argv)
    dit, text, vae, dck, vck = build_from_checkpoints(a.vae, a.dit, a.ema)
    cfg = dck["config"]
    prov = {
        "dit.trained_by": "dit project, tools/train (MM-DiT + CLIP text encoder trained jointly from scratch on "
                          "procedural scenes; AutoencoderKL trained first)",
        "dit.train_steps": str(dck["step"]),
        "dit.train_batch": str(dck["args"].get("batch")),
        "vae.train_steps": str(vck["step"]),
        "dit.train_seeds": json.dumps({"vae": vck.get("seed"), "dit": dck.get("seed")}),
        "dit.train_config": json.dumps(cfg, sort_keys=True, separators=(",", ":")),
        "dit.train_date": datetime.date.today().isoformat(),
        "dit.weights": "ema" if a.ema else "raw",
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    n = export(dit, text, vae, dck["vocab"], dck["stats"], cfg, tmp,
               {"steps": a.steps, "cfg_scale": a.cfg_scale, "shift": a.shift, "sampler": a.sampler}, prov)
    if n > a.max_bytes:
        os.remove(tmp)
        raise SystemExit(f"{a.out}: {n} bytes, more than {a.max_bytes}")
    os.replace(tmp, a.out)
    print(f"{a.out}: {n} bytes (dit step {dck['step']}, vae step {vck['step']})")


if __name__ == "__main__":
    main()
