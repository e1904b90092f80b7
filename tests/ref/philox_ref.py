#!/usr/bin/python3
"""tests/ref/philox_ref.py — reference numbers for tests/test_rng.c's Philox cases (run by hand, never
at test time): the torch-CUDA-randn imitation of AUTOMATIC1111 stable-diffusion-webui
modules/rng_philox.py, written again here in numpy with the same dtypes (float32 constants times
uint32 arrays -> float64, the result cast to float32).

    /usr/bin/python3 tests/ref/philox_ref.py
"""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
U_SCALE = np.array([2.3283064e-10], dtype=np.float32)
V_SCALE = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def philox4x32_10(c, k):
    """c: 4 uint32 arrays, k: 2 uint32 arrays (copied)."""
    c = [x.copy() for x in c]
    k0, k1 = k[0].copy(), k[1].copy()
    for r in range(10):
        p0 = c[0].astype(np.uint64) * M0
        p1 = c[2].astype(np.uint64) * M1
        n0 = (p1 >> np.uint64(32)).astype(np.uint32) ^ c[1] ^ k0
        n2 = (p0 >> np.uint64(32)).astype(np.uint32) ^ c[3] ^ k1
        c = [n0, p1.astype(np.uint32), n2, p0.astype(np.uint32)]
        if r < 9:
            k0 = k0 + W0
            k1 = k1 + W1
    return c


class Philox:
    def __init__(self, seed):
        self.seed, self.offset = seed, 0

    def randn(self, n):
        idx = np.arange(n, dtype=np.uint64)
        z = np.zeros(n, dtype=np.uint32)
        c = [z + np.uint32(self.offset & 0xffffffff), z + np.uint32(self.offset >> 32),
             idx.astype(np.uint32), (idx >> np.uint64(32)).astype(np.uint32)]
        k = [z + np.uint32(self.seed & 0xffffffff), z + np.uint32(self.seed >> 32)]
        self.offset += 1
        g = philox4x32_10(c, k)
        u = g[0] * U_SCALE + U_SCALE / 2
        v = g[1] * V_SCALE + V_SCALE / 2
        assert u.dtype == np.float64 and v.dtype == np.float64
        return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


def fnv(x):
    h = 0xcbf29ce484222325
    for b in np.ascontiguousarray(x, dtype=np.float32).view(np.uint8).tolist():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def philox_words(ctr, key):
    """One block in plain Python integers (no numpy), to check the vectorised rounds."""
    c, k = list(ctr), list(key)
    for r in range(10):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & 0xffffffff, (p0 >> 32) ^ c[3] ^ k[1], p0 & 0xffffffff]
        k = [(k[0] + 0x9E3779B9) & 0xffffffff, (k[1] + 0xBB67AE85) & 0xffffffff]
    return c


def f9(x):
    return ", ".join("%.9gf" % v for v in x)


if __name__ == "__main__":
    # Random123's known-answer vectors for philox4x32-10 (kat_vectors), checked by the plain version
    kat = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
           ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
           ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
            (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
    for ctr, key, want in kat:
        got = philox_words(ctr, key)
        assert tuple(got) == want, (ctr, [hex(v) for v in got])
        gv = philox4x32_10([np.array([v], dtype=np.uint32) for v in ctr], [np.array([v], dtype=np.uint32) for v in key])
        assert tuple(int(v[0]) for v in gv) == want
    print("Random123 KAT: ok")
    g = Philox(0)
    print("seed 0 randn(5):", f9(g.randn(5)))
    for seed, n in [(0, 16), (42, 262144), (2024, 196608), (0xfedcba9876543210, 4099)]:
        x = Philox(seed).randn(n)
        print("seed %d n %d: hash 0x%016xull ends { %s }" % (seed, n, fnv(x), f9([x[0], x[1], x[2], x[n - 2], x[n - 1]])))
    g = Philox(7)
    seq = np.concatenate([g.randn(40), g.randn(3), g.randn(20)])
    print("seed 7 randn(40), randn(3), randn(20): hash 0x%016xull; x[40..42] { %s }" % (fnv(seq), f9(seq[40:43])))
