"""Minimal safetensors reader/writer (json + struct + numpy), our own code.

Format (golden README section 2): u64 little-endian header length N, N bytes of JSON padded with
spaces to a multiple of 8, then the raw little-endian row-major data. The JSON maps each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (relative to the data start, no gaps) and
may hold "__metadata__" (string -> string).
"""
import json
import struct

import numpy as np

_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64,
       "U8": np.uint8, "I8": np.int8, "I16": np.int16}
_NAME = {np.dtype(v): k for k, v in _NP.items()}


def _to_numpy(t):
    """torch tensor or array -> contiguous numpy array (BF16 is not supported here)."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(t)


def save(path, tensors, metadata=None):
    """tensors: name -> array (dtype kept: cast before calling). Names are written sorted."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = _to_numpy(tensors[name])
        if a.dtype not in _NAME:
            raise ValueError(f"{name}: dtype {a.dtype} not supported")
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAME[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise ValueError(f"metadata values must be strings: {bad}")
        header["__metadata__"] = dict(metadata)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    return 8 + len(js) + off


def load(path):
    """-> (dict name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = np.dtype(_NP[h["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(raw, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b).reshape(h["shape"])
    return out, meta
