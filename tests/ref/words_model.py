#!/usr/bin/env python3
# tests/ref/words_model.py OUT DIT.safetensors VAE.safetensors — used by tests/test_generate.sh:
# a random-weight file in the embedded model's layout (weights/, dit.text = clip-words), built from
# an SD3 model written by `dit synth` and a KL VAE, with a tiny CLIP and its word vocabulary.
import json, random, struct, sys
out, dit_file, vae_file = sys.argv[1:4]
random.seed(1)
vocab = ['<unk>', 'a', 'blue', 'circle', 'left', 'of', 'red', 'square', '<bos>', '<eos>']
D, L, P, M = 32, 2, 16, 64
head, blobs, off = {}, [], 0
def add(name, shape, vals=None, dtype='F32'):
    global off
    n = 1
    for d in shape: n *= d
    if vals is None: vals = [random.uniform(-0.3, 0.3) for _ in range(n)]
    b = struct.pack('<%df' % n, *vals); blobs.append(b)
    head[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [off, off + len(b)]}; off += len(b)
def copy(path, prefix):
    global off
    d = open(path, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); base = 8 + n
    for k, v in h.items():
        if k == '__metadata__': continue
        b, e = v['data_offsets']; blobs.append(d[base + b:base + e])
        head[prefix + k] = {'dtype': v['dtype'], 'shape': v['shape'], 'data_offsets': [off, off + e - b]}; off += e - b
copy(dit_file, '')
copy(vae_file, 'first_stage_model.')
c = 'text_encoders.clip.transformer.text_model.'
add(c + 'embeddings.token_embedding.weight', [len(vocab), D]); add(c + 'embeddings.position_embedding.weight', [P, D])
for l in range(L):
    p = c + 'encoder.layers.%d.' % l
    for ln in ('layer_norm1', 'layer_norm2'):
        add(p + ln + '.weight', [D], [1.0] * D); add(p + ln + '.bias', [D], [0.0] * D)
    for q in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
        add(p + 'self_attn.' + q + '.weight', [D, D]); add(p + 'self_attn.' + q + '.bias', [D])
    add(p + 'mlp.fc1.weight', [M, D]); add(p + 'mlp.fc1.bias', [M]); add(p + 'mlp.fc2.weight', [D, M]); add(p + 'mlp.fc2.bias', [D])
add(c + 'final_layer_norm.weight', [D], [1.0] * D); add(c + 'final_layer_norm.bias', [D], [0.0] * D)
head['__metadata__'] = {'text.vocab': json.dumps(vocab), 'text.heads': '2', 'text.hidden_act': 'gelu', 'dit.text': 'clip-words',
                        'vae.scaling_factor': '0.5', 'vae.shift_factor': '0.1', 'dit.steps': '3', 'dit.cfg_scale': '3',
                        'dit.shift': '2', 'dit.sampler': 'heun', 'dit.width': '32', 'dit.height': '48'}
hj = json.dumps(head).encode(); hj += b' ' * (-len(hj) % 8)
open(out, 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
