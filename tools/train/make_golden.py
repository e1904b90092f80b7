"""Golden cases proving that the C engine computes what the PyTorch model does, for the weights in
weights/default.safetensors (the format of ../shared/golden: case.json + io.safetensors, inputs
in.*, expected outputs out.*, tolerances in case.json):

  tests/cases/embedded/dit/    family sd3:       one MM-DiT forward, batch 2, per-block dumps
  tests/cases/embedded/clip/   family clip_text: the text encoder on word-tokenized prompts
  tests/cases/embedded/vae/    family vae:       encode + decode, every module output

The references are the modules of tools/train/model.py run in float64 with the stored F16 weights
upcast exactly, rounded to float32 for storage. A float32 run of the same code gives each tensor's
f32-vs-f64 error; the bounds are 4x that with a floor of 1e-5 (DiT, CLIP, like the shared goldens)
and 50x with a floor of 1e-4 for the VAE (the shared ae_tiny case's rule). case.json records the
weights file's sha256: cases made for other weights are stale (tests/test_embedded.sh says so).

  make_golden.py [--weights weights/default.safetensors] [--out tests/cases/embedded]
                 [--data PREFIX]   (a dataset image for the VAE case; else a drawn test image)
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import model as M  # noqa: E402
import st  # noqa: E402

PROMPTS = [
    "a large red circle left of a small blue square",
    "",
    "Two GREEN stars, above a striped purple triangle!",
    "a small white ring behind a large black cross, and a dotted orange square right of an outlined yellow "
    "circle below a green star in front of a blue triangle left of a red ring above everything else here",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def strip(tensors, prefix):
    return {k[len(prefix):]: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()
            if k.startswith(prefix)}


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = np.abs(b).max()
    return float(np.abs(a - b).max() / m) if m > 0 else 0.0


def abs_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def f32(t):
    return np.ascontiguousarray(t.detach().numpy().astype(np.float32)) if torch.is_tensor(t) else t


class Models:
    """The three modules from a weights file, in float64 and float32 (weights = stored F16 values)."""

    def __init__(self, path, dtypes=(torch.float64, torch.float32)):
        t, self.meta = st.load(path)
        self.vocab = json.loads(self.meta["text.vocab"])
        heads = int(self.meta["text.heads"])
        ct = strip(t, M.PREFIX_CLIP)
        V, D = ct["text_model.embeddings.token_embedding.weight"].shape
        n_pos = ct["text_model.embeddings.position_embedding.weight"].shape[0]
        mlp = ct["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        layers = len({k.split(".")[3] for k in ct if k.startswith("text_model.encoder.layers.")})
        self.text_cfg = dict(vocab_size=V, n_pos=n_pos, width=D, layers=layers, heads=heads, mlp=mlp)
        dt = strip(t, M.PREFIX_DIT)
        hidden, in_ch, p, _ = dt["x_embedder.proj.weight"].shape
        depth = len({k.split(".")[1] for k in dt if k.startswith("joint_blocks.")})
        self.dit_cfg = dict(in_ch=in_ch, hidden=hidden, depth=depth, patch=p,
                            pos_max=int(round(dt["pos_embed"].shape[1] ** 0.5)),
                            ctx_dim=dt["context_embedder.weight"].shape[1], adm_dim=dt["y_embedder.mlp.0.weight"].shape[1],
                            mlp_ratio=dt["joint_blocks.0.x_block.mlp.fc1.weight"].shape[0] // hidden)
        vt = strip(t, M.PREFIX_VAE)
        ch = vt["encoder.conv_in.weight"].shape[0]
        levels = len({k.split(".")[2] for k in vt if k.startswith("encoder.down.")})
        mult = [vt[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] // ch for i in range(levels)]
        nres = len({k.split(".")[4] for k in vt if k.startswith("encoder.down.0.block.")})
        z = vt["decoder.conv_in.weight"].shape[1]
        self.vae_cfg = dict(ch=ch, ch_mult=mult, num_res_blocks=nres, z=z)
        self.tok = M.WordTokenizer(self.vocab, n_pos)
        self.m = {}
        for dtype in dtypes:
            text = M.CLIPText(**self.text_cfg)
            dit = M.MMDiT(**self.dit_cfg)
            vae = M.AutoencoderKL(ch, mult, nres, z)
            for mod, sd in ((text, ct), (dit, dt), (vae, vt)):
                mod.load_state_dict(sd, strict=True)
                mod.to(dtype).eval()
            self.m[dtype] = (text, dit, vae)


def tolerances(ref, f32run, floor, factor, abs_names=()):
    prec, tol = {}, {}
    for k in ref:
        if k not in f32run:
            continue
        if k in abs_names:
            e = abs_err(f32run[k], ref[k])
            prec[k] = {"max_abs_err": e}
            tol[k] = {"max_abs": max(floor, factor * e)}
        else:
            e = rel_err(f32run[k], ref[k])
            prec[k] = {"rel_to_max": e}
            tol[k] = {"rel_to_max": max(floor, factor * e)}
    return prec, tol


def write_case(out, name, case, io):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    st.save(os.path.join(d, "io.safetensors"), io)
    case["io_tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(io.items())}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")
    return d


def weights_entry(rel_file, prefix, sha, meta):
    return {"file": rel_file, "key_prefix": prefix, "dtype": "F16", "sha256": sha,
            "train_steps": meta.get("dit.train_steps"), "note": "the embedded default model; references computed "
            "from its stored F16 values upcast to float64"}


# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def clip_case(ms, rel_file, sha):
    ids = ms.tok.batch(PROMPTS)
    runs = {}
    for dtype in (torch.float64, torch.float32):
        taps = {}
        ms.m[dtype][0](ids, taps)
        runs[dtype] = {"out." + k: f32(v) for k, v in taps.items()}
    ref, lo = runs[torch.float64], runs[torch.float32]
    prec, _ = tolerances(ref, lo, 1e-5, 4)
    worst = max(v["rel_to_max"] for v in prec.values())
    io = {"in.input_ids": ids.numpy().astype(np.int32), **ref,
          "out.eos_index": ids.argmax(1).numpy().astype(np.int32)}
    c = ms.text_cfg
    case = {
        "case": "embedded/clip", "family": "clip_text",
        "description": "the embedded default model's CLIP text encoder (trained), word-tokenized prompts",
        "config": {"hidden_act": "gelu", "hidden_size": c["width"], "intermediate_size": c["mlp"],
                   "num_attention_heads": c["heads"], "num_hidden_layers": c["layers"], "vocab_size": c["vocab_size"],
                   "max_position_embeddings": c["n_pos"], "layer_norm_eps": 1e-5, "projection": "none"},
        "weights": weights_entry(rel_file, M.PREFIX_CLIP, sha, ms.meta),
        "tokenizer": {
            "rule": "dit.text = clip-words: ASCII lowercase; every char not in [a-z0-9] -> space; split; word -> id "
                    "in metadata text.vocab or 0 (<unk>); row = [<bos>] + ids[:n_pos-2] + [<eos>] + <eos> padding",
            "prompts": [{"text": p, "ids": ms.tok(p)} for p in PROMPTS]},
        "inputs": {"in.input_ids": "I32 [4, n_pos]: the prompts of tokenizer.prompts (incl. the empty prompt and one "
                                   "longer than n_pos - 2 words)"},
        "outputs": {"out.embeddings": "token_embedding[ids] + position_embedding", "out.layerN": "after layer N",
                    "out.penultimate": "output of layer L-2 (no final LN)",
                    "out.last_hidden_state": "final_layer_norm(last layer): the DiT context (all n_pos rows)",
                    "out.pooled": "last_hidden_state at argmax(ids) = the first <eos>: the DiT pooled vector",
                    "out.eos_index": "argmax(ids)"},
        "reference": "tools/train/model.py CLIPText in float64",
        "f32_vs_f64": prec,
        "suggested_tolerance": {"metric": "max|out - ref| / max|ref| per tensor",
                                "f32_impl": max(1e-5, 4 * worst), "rule": "4x the worst float32 run error, floor 1e-5"},
    }
    return case, io, ref


@torch.no_grad()
def dit_case(ms, rel_file, sha, clip_ref):
    text, dit, _ = ms.m[torch.float64]
    g = torch.Generator().manual_seed(7)
    B, Cz = 2, ms.dit_cfg["in_ch"]
    h, w = 16, 12  # a non-square latent catches H/W transposes; config.crop gives the pos_embed window
    x = torch.randn(B, Cz, h, w, generator=g).float()
    sigma = torch.tensor([0.73, 0.21], dtype=torch.float32)
    t = (1000 * sigma).float()
    # context and pooled of two prompts, as the text encoder gives them (the clip case's reference)
    ctx = torch.from_numpy(clip_ref["out.last_hidden_state"][[0, 2]])
    pooled = torch.from_numpy(clip_ref["out.pooled"][[0, 2]])
    runs = {}
    for dtype in (torch.float64, torch.float32):
        taps = {}
        v = ms.m[dtype][1](x.to(dtype), t.to(dtype), ctx.to(dtype), pooled.to(dtype), taps)
        taps["denoised"] = x.to(dtype) - v * sigma.to(dtype)[:, None, None, None]
        runs[dtype] = {"out." + k: f32(val) for k, val in taps.items()}
    ref, lo = runs[torch.float64], runs[torch.float32]
    prec, tol = tolerances(ref, lo, 1e-5, 4, abs_names=("out.t_freq",))
    sens = sensitivity(ms.m[torch.float64][1], x, t, ctx, pooled, ref["out.v"])
    io = {"in.x": f32(x), "in.t": f32(t), "in.sigma": f32(sigma), "in.context": f32(ctx), "in.y": f32(pooled), **ref}
    c = ms.dit_cfg
    M_ = c["pos_max"]
    case = {
        "family": "sd3", "case": "embedded/dit",
        "variant": "the embedded default model's MM-DiT (SD3.5-large layout: qk RMSNorm, no attn2)",
        "reference": {"function": "tools/train/model.py MMDiT.forward in float64"},
        "weights": weights_entry(rel_file, M.PREFIX_DIT, sha, ms.meta),
        "config": {"depth": c["depth"], "hidden_size": c["hidden"], "num_heads": c["hidden"] // 64, "head_dim": 64,
                   "patch_size": c["patch"], "in_channels": c["in_ch"], "out_channels": c["in_ch"],
                   "pos_embed_max_size": M_, "adm_in_channels": c["adm_dim"], "context_in_dim": c["ctx_dim"],
                   "qk_norm": "rms", "x_block_self_attn_layers": [], "mlp_hidden_dim": c["mlp_ratio"] * c["hidden"],
                   "crop": {"h_patches": h // c["patch"], "w_patches": w // c["patch"],
                            "top": (M_ - h // c["patch"]) // 2, "left": (M_ - w // c["patch"]) // 2}},
        "inputs": {"in.x": "model-space latent NCHW (B, C, H, W), seeded normal",
                   "in.context": "text encoder last_hidden_state of prompts 0 and 2 of the clip case (B, n_pos, D)",
                   "in.y": "pooled vector of the same prompts", "in.t": "1000 sigma", "in.sigma": "sigma"},
        "outputs": {"out.t_freq": "256-d sinusoid of in.t", "out.t_emb": "t_embedder", "out.y_emb": "y_embedder",
                    "out.c": "t_emb + y_emb", "out.embed.img": "x_embedder + cropped pos_embed",
                    "out.embed.txt": "context_embedder", "out.blockN.img/txt": "streams after joint block N",
                    "out.v_tokens": "final layer tokens", "out.v": "velocity NCHW", "out.denoised": "in.x - v sigma"},
        "timestep_convention": "t = 1000 sigma, fed to the sinusoid as is",
        "precision": {"f32_vs_f64_per_tensor": prec},
        "sensitivity": {"metric": "max|out.v(mistake) - out.v| / max|out.v| in float64: what typical mistakes "
                                  "do to out.v with these weights (compare with the bound on out.v)", **sens},
        "tolerance": {"metric": "per tensor T: max|got - T| <= rel_to_max * max|T| (max_abs for out.t_freq)",
                      "per_tensor": tol, "note": "4x the error of a float32 run of the same code, floor 1e-5"},
    }
    return case, io


@torch.no_grad()
def sensitivity(dit, x, t, ctx, pooled, v_ref):
    """out.v under typical implementation mistakes (each patched into the float64 model for one run)."""
    d = torch.float64
    mistakes = {
        "gelu_erf": (M._Mlp, "forward", lambda self, h: self.fc2(M.F.gelu(self.fc1(h)))),
        "no_qk_norm": (M.RMSNorm, "forward", lambda self, h: h),
        "ln_eps_1e-5": (M, "layer_norm", lambda h, eps=1e-6: M.F.layer_norm(h, h.shape[-1:], eps=1e-5)),
        "crop_top_left": (M.MMDiT, "cropped_pos_embed",
                          lambda self, h, w: self.pos_embed.view(1, self.pos_max, self.pos_max, -1)[:, :h, :w].reshape(1, h * w, -1)),
        "final_scale_shift": (M._FinalLayer, "forward",
                              lambda self, h, c: self.linear(M.modulate(M.layer_norm(h), *self.adaLN_modulation(c).chunk(2, 1)[::-1]))),
        "sincos_order": (M, "timestep_embedding",
                         lambda tt, dim=256: M_timestep_embedding(tt, dim).roll(dim // 2, dims=-1)),
    }
    out = {}
    for name, (owner, attr, fn) in mistakes.items():
        orig = getattr(owner, attr)
        setattr(owner, attr, fn)
        try:
            v = dit(x.to(d), t.to(d), ctx.to(d), pooled.to(d)).numpy()
        finally:
            setattr(owner, attr, orig)
        out[name] = rel_err(v, v_ref)
    return out


M_timestep_embedding = M.timestep_embedding


def test_image(data_prefix, size):
    """[1, 3, 32, 48] uint8: a crop of the first dataset image, or (no dataset) flat shapes drawn here."""
    if data_prefix and os.path.exists(data_prefix + ".rgb"):
        img = C.Dataset(data_prefix, size).images[0]
        r, c = (size - 32) // 2, (size - 48) // 2
        return np.ascontiguousarray(img[r:r + 32, c:c + 48].transpose(2, 0, 1)[None])
    yy, xx = np.mgrid[0:32, 0:48]
    img = np.zeros((32, 48, 3), np.uint8) + np.array([30, 30, 40], np.uint8)
    img[(yy - 14) ** 2 + (xx - 13) ** 2 < 100] = (220, 40, 40)                   # a red disc
    img[(np.abs(yy - 18) < 8) & (np.abs(xx - 34) < 8) & ((xx // 3) % 2 == 0)] = (40, 90, 230)  # striped square
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


@torch.no_grad()
def vae_case(ms, rel_file, sha, data_prefix, size):
    g = torch.Generator().manual_seed(11)
    u8 = test_image(data_prefix, size)
    img = torch.from_numpy(u8.astype(np.float32) / 255.0 * 2 - 1)
    z = ms.vae_cfg["z"]
    latent = torch.randn(1, z, 4, 6, generator=g).float()
    shift, scaling = float(ms.meta["vae.shift_factor"]), float(ms.meta["vae.scaling_factor"])
    runs = {}
    for dtype in (torch.float64, torch.float32):
        vae = ms.m[dtype][2]
        taps = {}
        hooks = []
        for name, mod in vae.named_modules():
            parts = name.split(".")
            if name in ("encoder.conv_in", "decoder.conv_in", "encoder.norm_out", "decoder.norm_out", "decoder.conv_out") \
                    or (len(parts) == 3 and parts[1] == "mid" and parts[2] == "attn_1") \
                    or (len(parts) == 4 and parts[1] in ("down", "up") and parts[3] in ("downsample", "upsample")) \
                    or (len(parts) == 5 and parts[1] in ("down", "up") and parts[3] == "block" and parts[4] == "0"):
                key = "out." + ("enc" if parts[0] == "encoder" else "dec") + "." + ".".join(parts[1:])
                hooks.append(mod.register_forward_hook(lambda m, i, o, key=key: taps.__setitem__(key, o)))
        x = img.to(dtype)
        mom = vae.encode(x)
        dec_raw = vae.decode(latent.to(dtype))
        for hk in hooks:
            hk.remove()
        mean, logvar = mom[:, :z], mom[:, z:]
        r = dict(taps)
        r.update({
            "out.moments": mom, "out.mean": mean, "out.logvar": logvar, "out.logvar_clamped": logvar.clamp(-30, 20),
            "out.latent_flux": 0.3611 * (mean - 0.1159), "out.latent_sd3": (mean - 0.0609) * 1.5305,
            "out.latent_model": (mean - shift) * scaling,
            "out.decoded_raw": dec_raw,
            "out.decoded_flux": vae.decode(latent.to(dtype) / 0.3611 + 0.1159),
            "out.decoded_sd3": vae.decode(latent.to(dtype) / 1.5305 + 0.0609),
            "out.decoded_model": vae.decode(latent.to(dtype) / scaling + shift),
            "out.reconstruction": vae.decode(mean),
        })
        runs[dtype] = {k: f32(v) for k, v in r.items()}
    ref, lo = runs[torch.float64], runs[torch.float32]
    prec, _ = tolerances(ref, lo, 1e-4, 50)
    worst = max(v["rel_to_max"] for v in prec.values())
    rec = ref["out.reconstruction"]
    psnr = -10 * np.log10(np.mean(((np.clip(rec, -1, 1) - img.numpy()) / 2) ** 2))
    io = {"in.image": f32(img), "in.image_u8": u8, "in.latent": f32(latent), **ref}
    c = ms.vae_cfg
    case = {
        "case": "embedded/vae", "family": "vae",
        "description": "the embedded default model's AutoencoderKL (trained), math = golden README vae/",
        "config": {"in_channels": 3, "ch": c["ch"], "out_ch": 3, "ch_mult": c["ch_mult"],
                   "num_res_blocks": c["num_res_blocks"], "z_channels": z,
                   "groupnorm": {"num_groups": 32, "eps": 1e-6, "affine": True}},
        "latent_normalisation": {"shift_factor": shift, "scaling_factor": scaling,
                                 "note": "metadata vae.shift_factor / vae.scaling_factor: model = (raw - shift) * scaling"},
        "weights": weights_entry(rel_file, M.PREFIX_VAE, sha, ms.meta),
        "inputs": {"in.image": "[1,3,32,48] NCHW in [-1,1] = u8/255*2-1", "in.image_u8": "the same image as uint8",
                   "in.latent": f"[1,{z},4,6] standard-normal latent fed to the decoder"},
        "outputs": {"out.moments": "encoder output (mean ++ logvar)", "out.mean": "posterior mean",
                    "out.latent_flux / out.latent_sd3": "the FLUX / SD3 normalisations of the mean (what dit check "
                    "runs for every vae case)",
                    "out.latent_model / out.decoded_model": "this model's own normalisation (metadata)",
                    "out.decoded_raw / _flux / _sd3": "decoder(in.latent) under each interpretation",
                    "out.reconstruction": "decoder(out.mean)",
                    "out.enc.* / out.dec.*": "module outputs (norm_out = the GroupNorm, before swish)"},
        "reference": "tools/train/model.py AutoencoderKL in float64",
        "reconstruction_psnr_db": float(psnr),
        "f32_vs_f64": prec,
        "suggested_tolerance": {"metric": "max|out - ref| / max|ref| per tensor", "f32_impl": max(1e-4, 50 * worst),
                                "rule": "50x the worst float32 run error, floor 1e-4 (the shared ae_tiny rule)"},
    }
    return case, io


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="weights/default.safetensors")
    p.add_argument("--out", default="tests/cases/embedded")
    p.add_argument("--weights-ref", dest="weights_ref", default=None,
                   help="the weights path as case.json names it, relative to each case folder "
                        "(default: computed from --weights and --out)")
    p.add_argument("--data", default=None, help="dataset prefix: the VAE case uses a crop of its first image")
    p.add_argument("--image-size", dest="image_size", type=int, default=M.DEFAULT_CONFIG["image_size"])
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ms = Models(a.weights)
    sha = sha256(a.weights)
    rel = a.weights_ref or os.path.relpath(os.path.abspath(a.weights), os.path.abspath(os.path.join(a.out, "x")))
    case, io, clip_ref = clip_case(ms, rel, sha)
    print(write_case(a.out, "clip", case, io), "f32 worst", case["suggested_tolerance"]["f32_impl"])
    case, io = dit_case(ms, rel, sha, clip_ref)
    print(write_case(a.out, "dit", case, io), "out.v bound", case["tolerance"]["per_tensor"]["out.v"])
    case, io = vae_case(ms, rel, sha, a.data, a.image_size)
    print(write_case(a.out, "vae", case, io), "f32 bound", case["suggested_tolerance"]["f32_impl"],
          f"reconstruction PSNR {case['reconstruction_psnr_db']:.2f} dB")


if __name__ == "__main__":
    main()
