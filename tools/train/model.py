"""PyTorch modules of the embedded default model, written for this project from the C engine's
conventions (dit/forward.c, dit/embed.c, text/clip.h, vae/kl.c and the golden README):

  * MMDiT          the SD3 / SD3.5-large diffusion transformer (joint blocks, q/k RMSNorm, no attn2),
                   state_dict keys = the released single-file names under model.diffusion_model.
  * CLIPText       a small CLIP text transformer (HF CLIPTextModel names) under
                   text_encoders.clip.transformer., with the word tokenizer of the "clip-words" rule.
  * AutoencoderKL  the LDM / FLUX ae.safetensors autoencoder under first_stage_model.

Every module runs in the dtype of its parameters, so the same code in float64 is the reference that
tools/train/make_golden.py writes for the C engine's checks. Attention is written out (softmax of
q k^T / sqrt(d)) because torch 1.13 has no scaled_dot_product_attention.
"""
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

# Key prefixes inside weights/default.safetensors (one SD3-style single file).
PREFIX_DIT = "model.diffusion_model."
PREFIX_CLIP = "text_encoders.clip.transformer."
PREFIX_VAE = "first_stage_model."

# The default geometry (tools/train/README.md explains the choice and the byte count).
DEFAULT_CONFIG = {
    "image_size": 128,
    # VAE: 3 levels (scale 4), z 8, channels multiples of 32 (GroupNorm 32 groups). Measured against
    # scale 8 / z 16 at the same training time: 28.2 vs 24.9 dB, checker 0.977 vs 0.513 (README)
    "vae_ch": 32, "vae_ch_mult": [1, 2, 2], "vae_res_blocks": 1, "vae_z": 8,
    # text encoder
    "text_width": 128, "text_layers": 4, "text_heads": 2, "text_mlp": 512, "text_n_pos": 32,
    # MM-DiT: heads = hidden / 64 (the C loader's SD3 rule); patch 4 on the scale-4 latent gives the
    # 8 x 8 = 64 image tokens of a 128 x 128 image; pos_embed 16 x 16 covers 256 x 256
    "dit_hidden": 192, "dit_depth": 4, "dit_patch": 4, "dit_pos_max": 16, "dit_mlp_ratio": 4,
}


# ---------------------------------------------------------------------------------------------
# Word tokenizer ("clip-words", the C side implements the same rule)
# ---------------------------------------------------------------------------------------------

def make_vocab(words):
    """vocab[0] = <unk>, the words sorted, then <bos> (V-2) and <eos> (V-1): EOS is the largest id,
    so the CLIP pooling row argmax(ids) is the first EOS."""
    ws = sorted(set(w for w in words if w))
    for w in ws:
        if not re.fullmatch(r"[a-z0-9]+", w):
            raise ValueError(f"vocabulary word {w!r} is not [a-z0-9]+")
    return ["<unk>"] + ws + ["<bos>", "<eos>"]


def normalize_words(text):
    """ASCII lowercase; every character outside [a-z0-9] becomes a space; split on spaces."""
    out = []
    for ch in text:
        o = ord(ch)
        if 65 <= o <= 90:
            out.append(chr(o + 32))
        elif 97 <= o <= 122 or 48 <= o <= 57:
            out.append(ch)
        else:
            out.append(" ")
    return "".join(out).split()


class WordTokenizer:
    def __init__(self, vocab, n_pos):
        self.vocab = list(vocab)
        self.n_pos = n_pos
        self.index = {w: i for i, w in enumerate(self.vocab)}
        assert self.vocab[0] == "<unk>" and self.vocab[-2] == "<bos>" and self.vocab[-1] == "<eos>"
        self.bos, self.eos = len(self.vocab) - 2, len(self.vocab) - 1

    def __call__(self, text):
        """-> list of n_pos ids: [<bos>] + word ids (first n_pos-2) + [<eos>] + <eos> padding."""
        ids = [self.index.get(w, 0) for w in normalize_words(text)][: self.n_pos - 2]
        row = [self.bos] + ids + [self.eos]
        return row + [self.eos] * (self.n_pos - len(row))

    def batch(self, texts):
        return torch.tensor([self(t) for t in texts], dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# CLIP text transformer (text/clip.h: pre-LN, causal mask always, no padding mask, LN eps 1e-5,
# exact erf GELU, heads from metadata text.heads, no text_projection)
# ---------------------------------------------------------------------------------------------

class _CLIPAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, mask):
        B, L, D = x.shape
        hd = D // self.heads
        q = self.q_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, L, self.heads, hd).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1) @ v
        return self.out_proj(a.transpose(1, 2).reshape(B, L, D))


class _CLIPMLP(nn.Module):
    def __init__(self, width, mlp):
        super().__init__()
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU: metadata text.hidden_act = "gelu"


class _CLIPLayer(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=1e-5)
        self.self_attn = _CLIPAttention(width, heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = _CLIPMLP(width, mlp)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPText(nn.Module):
    """state_dict keys: text_model.embeddings.{token,position}_embedding.weight,
    text_model.encoder.layers.N.*, text_model.final_layer_norm.* (HF CLIPTextModel names)."""

    def __init__(self, vocab_size, n_pos=32, width=128, layers=4, heads=2, mlp=512):
        super().__init__()
        self.heads = heads
        tm = nn.Module()
        tm.embeddings = nn.Module()
        tm.embeddings.token_embedding = nn.Embedding(vocab_size, width)
        tm.embeddings.position_embedding = nn.Embedding(n_pos, width)
        tm.encoder = nn.Module()
        tm.encoder.layers = nn.ModuleList([_CLIPLayer(width, heads, mlp) for _ in range(layers)])
        tm.final_layer_norm = nn.LayerNorm(width, eps=1e-5)
        self.text_model = tm
        nn.init.normal_(tm.embeddings.token_embedding.weight, std=0.02)
        nn.init.normal_(tm.embeddings.position_embedding.weight, std=0.01)

    def forward(self, ids, taps=None):
        """ids [B, n] (n <= n_pos) -> (context = last_hidden_state [B, n, D], pooled [B, D] at argmax(ids))."""
        tm = self.text_model
        B, n = ids.shape
        w = tm.embeddings.token_embedding.weight
        x = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding.weight[:n]
        mask = torch.full((n, n), float("-inf"), dtype=w.dtype, device=w.device).triu(1)
        if taps is not None:
            taps["embeddings"] = x
        layers = tm.encoder.layers
        for i, layer in enumerate(layers):
            x = layer(x, mask)
            if taps is not None:
                taps[f"layer{i}"] = x
                if i == len(layers) - 2:
                    taps["penultimate"] = x
        last = tm.final_layer_norm(x)
        # argmax returns the first maximum on CPU and CUDA for these small rows; the EOS is the
        # largest id, so this is the first EOS (C: clip_pool_index)
        pos = ids.argmax(dim=1)
        pooled = last[torch.arange(B, device=ids.device), pos]
        if taps is not None:
            taps["last_hidden_state"] = last
            taps["pooled"] = pooled
        return last, pooled


# ---------------------------------------------------------------------------------------------
# MM-DiT (golden README section 6, sd3.5-large layout: qk RMSNorm, no attn2)
# ---------------------------------------------------------------------------------------------

def timestep_embedding(t, dim=256, max_period=10000.0):
    """[cos | sin] of t * exp(-ln(max_period) i / half), i = 0..half-1 (t used as is: SD3 gets 1000 sigma)."""
    half = dim // 2
    i = torch.arange(half, dtype=t.dtype, device=t.device)
    freqs = torch.exp(-math.log(max_period) * i / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sincos_pos_embed_2d(hidden, M):
    """A fixed 2-D sin-cos table [1, M*M, hidden] (row-major grid): the first half of the features
    encodes the row, the second half the column, each as [sin | cos] of pos * 10000^(-k/(n/2)).
    The C engine loads whatever the file holds (it never recomputes this)."""
    assert hidden % 4 == 0

    def one_axis(n, pos):
        k = torch.arange(n // 2, dtype=torch.float64) / (n / 2.0)
        a = pos[:, None] * (1.0 / 10000.0 ** k)[None]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)

    r = torch.arange(M, dtype=torch.float64).repeat_interleave(M)  # grid row of token r*M + c
    c = torch.arange(M, dtype=torch.float64).repeat(M)
    return torch.cat([one_axis(hidden // 2, r), one_axis(hidden // 2, c)], dim=1).float()[None]


def layer_norm(x, eps=1e-6):
    """LayerNorm without affine parameters (biased variance)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class _Mlp2(nn.Module):
    """Linear, SiLU, Linear under .mlp (keys mlp.0, mlp.2): t_embedder, y_embedder."""

    def __init__(self, d_in, hidden):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, x):
        return self.mlp(x)


class _SelfAttnW(nn.Module):
    """The attention weights of one stream: qkv [3H, H] (rows (3, heads, hd)), ln_q/ln_k, proj."""

    def __init__(self, hidden, heads, pre_only):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.ln_q = RMSNorm(hidden // heads)
        self.ln_k = RMSNorm(hidden // heads)
        if not pre_only:
            self.proj = nn.Linear(hidden, hidden)


class _Mlp(nn.Module):
    def __init__(self, hidden, mlp):
        super().__init__()
        self.fc1 = nn.Linear(hidden, mlp)
        self.fc2 = nn.Linear(mlp, hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class _Stream(nn.Module):
    """SD3 DismantledBlock without attn2: x_block or context_block."""

    def __init__(self, hidden, heads, mlp, pre_only=False):
        super().__init__()
        self.pre_only = pre_only
        self.attn = _SelfAttnW(hidden, heads, pre_only)
        if not pre_only:
            self.mlp = _Mlp(hidden, mlp)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, (2 if pre_only else 6) * hidden))

    def pre_attention(self, x, c):
        """-> (q, k, v each [B, heads, L, hd], what post_attention needs)."""
        B, L, H = x.shape
        nh = self.attn.heads
        mod = self.adaLN_modulation(c).chunk(2 if self.pre_only else 6, dim=1)
        qkv = self.attn.qkv(modulate(layer_norm(x), mod[0], mod[1])).view(B, L, 3, nh, H // nh)
        q = self.attn.ln_q(qkv[:, :, 0]).transpose(1, 2)
        k = self.attn.ln_k(qkv[:, :, 1]).transpose(1, 2)
        v = qkv[:, :, 2].transpose(1, 2)
        return q, k, v, mod

    def post_attention(self, a, x, mod):
        _, _, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod
        x = x + gate_msa[:, None] * self.attn.proj(a)
        return x + gate_mlp[:, None] * self.mlp(modulate(layer_norm(x), shift_mlp, scale_mlp))


class _JointBlock(nn.Module):
    def __init__(self, hidden, heads, mlp, pre_only):
        super().__init__()
        self.context_block = _Stream(hidden, heads, mlp, pre_only=pre_only)
        self.x_block = _Stream(hidden, heads, mlp)

    def forward(self, ctx, x, c):
        n = ctx.shape[1]
        qc, kc, vc, mc = self.context_block.pre_attention(ctx, c)
        qx, kx, vx, mx = self.x_block.pre_attention(x, c)
        # one attention over [context tokens, image tokens]
        q, k, v = torch.cat([qc, qx], 2), torch.cat([kc, kx], 2), torch.cat([vc, vx], 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
        B, nh, L, hd = a.shape
        a = a.transpose(1, 2).reshape(B, L, nh * hd)
        if not self.context_block.pre_only:
            ctx = self.context_block.post_attention(a[:, :n], ctx, mc)
        else:
            ctx = None  # the last block's context output is discarded
        return ctx, self.x_block.post_attention(a[:, n:], x, mx)


class _FinalLayer(nn.Module):
    def __init__(self, hidden, patch, out_ch):
        super().__init__()
        self.linear = nn.Linear(hidden, patch * patch * out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)  # (shift, scale), shift first
        return self.linear(modulate(layer_norm(x), shift, scale))


class _PatchEmbed(nn.Module):
    def __init__(self, in_ch, hidden, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, hidden, patch, stride=patch)


class MMDiT(nn.Module):
    def __init__(self, in_ch=8, hidden=192, depth=4, patch=4, pos_max=16, ctx_dim=128, adm_dim=128, mlp_ratio=4):
        super().__init__()
        assert hidden % 64 == 0, "the C loader takes heads = hidden / 64 for SD3"
        self.in_ch, self.hidden, self.patch, self.pos_max = in_ch, hidden, patch, pos_max
        heads = hidden // 64
        self.x_embedder = _PatchEmbed(in_ch, hidden, patch)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(hidden, pos_max))
        self.t_embedder = _Mlp2(256, hidden)
        self.y_embedder = _Mlp2(adm_dim, hidden)
        self.context_embedder = nn.Linear(ctx_dim, hidden)
        self.joint_blocks = nn.ModuleList(
            [_JointBlock(hidden, heads, mlp_ratio * hidden, pre_only=(i == depth - 1)) for i in range(depth)])
        self.final_layer = _FinalLayer(hidden, patch, in_ch)
        self._init()

    def _init(self):
        # DiT-style: xavier linears, small normal for the timestep MLP, adaLN-zero (gates and the
        # final layer start at zero so every block starts as the identity)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        for lin in (self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.y_embedder.mlp[0], self.y_embedder.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for blk in self.joint_blocks:
            for s in (blk.context_block, blk.x_block):
                nn.init.zeros_(s.adaLN_modulation[1].weight)
                nn.init.zeros_(s.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def cropped_pos_embed(self, h, w):
        """Rows top..top+h-1, columns left..left+w-1 of the M x M grid, top = (M - h) // 2."""
        M = self.pos_max
        if h > M or w > M:
            raise ValueError(f"a {h}x{w} patch grid is larger than pos_embed's {M}x{M}")
        top, left = (M - h) // 2, (M - w) // 2
        pe = self.pos_embed.view(1, M, M, -1)[:, top:top + h, left:left + w]
        return pe.reshape(1, h * w, -1)

    def unpatchify(self, tok, h, w):
        """tokens [B, h*w, p*p*C], feature (i*p + j)*C + ch -> [B, C, h*p, w*p] (channel-minor)."""
        p, C = self.patch, self.in_ch
        x = tok.view(tok.shape[0], h, w, p, p, C)
        return x.permute(0, 5, 1, 3, 2, 4).reshape(tok.shape[0], C, h * p, w * p)

    def forward(self, x, t, context, y, taps=None):
        """x [B, C, H, W] latent, t [B] = 1000 sigma, context [B, n, ctx_dim], y [B, adm] -> v [B, C, H, W]."""
        B, C, H, W = x.shape
        h, w = H // self.patch, W // self.patch
        tf = timestep_embedding(t.to(x.dtype))
        t_emb = self.t_embedder(tf)
        y_emb = self.y_embedder(y)
        # the residual streams and c stay in the input's dtype (float32 under bf16 autocast: only
        # the linears run in bf16 there)
        c = (t_emb + y_emb).to(x.dtype)
        xi = (self.x_embedder.proj(x).flatten(2).transpose(1, 2) + self.cropped_pos_embed(h, w)).to(x.dtype)
        ctx = self.context_embedder(context).to(x.dtype)
        if taps is not None:
            taps.update({"t_freq": tf, "t_emb": t_emb, "y_emb": y_emb, "c": c, "embed.img": xi, "embed.txt": ctx})
        for i, blk in enumerate(self.joint_blocks):
            ctx, xi = blk(ctx, xi, c)
            if taps is not None:
                taps[f"block{i}.img"] = xi
                if ctx is not None:
                    taps[f"block{i}.txt"] = ctx
        tok = self.final_layer(xi, c)
        v = self.unpatchify(tok, h, w)
        if taps is not None:
            taps["v_tokens"] = tok
            taps["v"] = v
        return v


# ---------------------------------------------------------------------------------------------
# AutoencoderKL (golden README vae/: GroupNorm 32 eps 1e-6, swish, single-head mid attention,
# asymmetric-pad downsample, nearest upsample; no quant_conv)
# ---------------------------------------------------------------------------------------------

class _GroupNorm(nn.GroupNorm):
    """GroupNorm(32, eps 1e-6) that computes bf16 inputs in float32 (torch 1.13's CPU kernel takes
    no bf16 input with float weights under autocast); float32/float64 inputs run as they are."""

    def forward(self, x):
        return super().forward(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x)


def _gn(c):
    return _GroupNorm(32, c, eps=1e-6, affine=True)


class _ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = _gn(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class _AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = _gn(c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q = self.q(h).flatten(2).transpose(1, 2)  # [B, HW, C], tokens row-major
        k = self.k(h).flatten(2)                  # [B, C, HW]
        v = self.v(h).flatten(2).transpose(1, 2)
        a = torch.softmax(q @ k / math.sqrt(C), dim=-1) @ v
        return x + self.proj_out(a.transpose(1, 2).reshape(B, C, H, W))


class _Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # zero-pad right and bottom by 1


class _Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _mid(c):
    m = nn.Module()
    m.block_1 = _ResnetBlock(c, c)
    m.attn_1 = _AttnBlock(c)
    m.block_2 = _ResnetBlock(c, c)
    return m


class _Encoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, m in enumerate(ch_mult):
            lvl = nn.Module()
            lvl.block = nn.ModuleList()
            for _ in range(nres):
                lvl.block.append(_ResnetBlock(cin, ch * m))
                cin = ch * m
            if i != len(ch_mult) - 1:
                lvl.downsample = _Downsample(cin)
            self.down.append(lvl)
        self.mid = _mid(cin)
        self.norm_out = _gn(cin)
        self.conv_out = nn.Conv2d(cin, 2 * z, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl in self.down:
            for b in lvl.block:
                h = b(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class _Decoder(nn.Module):
    def __init__(self, ch, ch_mult, nres, z):
        super().__init__()
        cin = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z, cin, 3, padding=1)
        self.mid = _mid(cin)
        ups = []
        for i in reversed(range(len(ch_mult))):
            lvl = nn.Module()
            lvl.block = nn.ModuleList()
            for _ in range(nres + 1):
                lvl.block.append(_ResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
            if i != 0:
                lvl.upsample = _Upsample(cin)
            ups.insert(0, lvl)  # up.0 is the full-resolution level and runs last
        self.up = nn.ModuleList(ups)
        self.norm_out = _gn(cin)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for lvl in reversed(self.up):
            for b in lvl.block:
                h = b(h)
            if hasattr(lvl, "upsample"):
                h = lvl.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """Images in [-1, 1]; encode -> moments [B, 2z, H/s, W/s] (mean ++ logvar); decode raw latents."""

    def __init__(self, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z=8):
        super().__init__()
        for m in ch_mult:
            assert (ch * m) % 32 == 0, "GroupNorm with 32 groups needs channels that are multiples of 32"
        self.z = z
        self.scale = 2 ** (len(ch_mult) - 1)
        self.encoder = _Encoder(ch, list(ch_mult), num_res_blocks, z)
        self.decoder = _Decoder(ch, list(ch_mult), num_res_blocks, z)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)


# ---------------------------------------------------------------------------------------------
# Building from a config, and the checkpoint names
# ---------------------------------------------------------------------------------------------

def build_vae(cfg):
    return AutoencoderKL(cfg["vae_ch"], cfg["vae_ch_mult"], cfg["vae_res_blocks"], cfg["vae_z"])


def build_text(cfg, vocab_size):
    return CLIPText(vocab_size, cfg["text_n_pos"], cfg["text_width"], cfg["text_layers"], cfg["text_heads"], cfg["text_mlp"])


def build_dit(cfg):
    D = cfg["text_width"]
    return MMDiT(in_ch=cfg["vae_z"], hidden=cfg["dit_hidden"], depth=cfg["dit_depth"], patch=cfg["dit_patch"],
                 pos_max=cfg["dit_pos_max"], ctx_dim=D, adm_dim=D, mlp_ratio=cfg["dit_mlp_ratio"])


def checkpoint_tensors(dit=None, text=None, vae=None):
    """name -> tensor with the single-file prefixes (what export.py writes)."""
    out = {}
    for prefix, m in ((PREFIX_DIT, dit), (PREFIX_CLIP, text), (PREFIX_VAE, vae)):
        if m is not None:
            for k, v in m.state_dict().items():
                out[prefix + k] = v
    return out


def count_bytes(cfg, vocab_size, dtype_bytes=2):
    """Tensor bytes of the exported file (without the header) for a configuration."""
    mods = (build_dit(cfg), build_text(cfg, vocab_size), build_vae(cfg))
    return sum(t.numel() for m in mods for t in m.state_dict().values()) * dtype_bytes
