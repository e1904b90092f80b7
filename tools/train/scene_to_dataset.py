"""Convert a `dit scene --out DIR` folder (NNNNN.png + NNNNN.json with "captions" and "objects")
into the training dataset format (PREFIX.rgb: N x H x W x 3 uint8, PREFIX.jsonl: {"index",
"captions", "objects"} a line), for a generator without `--dataset`:

  scene_to_dataset.py --scenes DIR --out PREFIX [--size 128]
"""
import argparse
import glob
import json
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--jobs", type=int, default=2, help="PNG decoding processes")
    a = p.parse_args(argv)
    pngs = sorted(glob.glob(os.path.join(a.scenes, "[0-9]*.png")))
    if not pngs:
        raise SystemExit(f"{a.scenes}: no NNNNN.png scenes")
    with open(a.out + ".rgb.tmp", "wb") as f_rgb, open(a.out + ".jsonl.tmp", "w") as f_js, \
            multiprocessing.Pool(a.jobs) as pool:
        for i, (png, img) in enumerate(zip(pngs, pool.imap(C.read_png, pngs, chunksize=16))):
            if img.shape != (a.size, a.size, 3):
                raise SystemExit(f"{png}: {img.shape[1]}x{img.shape[0]}, expected {a.size}x{a.size}")
            with open(png[:-4] + ".json") as f:
                truth = json.load(f)
            f_rgb.write(img.tobytes())
            f_js.write(json.dumps({"index": i, "captions": truth["captions"], "objects": truth.get("objects"),
                                   "file": os.path.basename(png)}) + "\n")
    os.replace(a.out + ".rgb.tmp", a.out + ".rgb")
    os.replace(a.out + ".jsonl.tmp", a.out + ".jsonl")
    print(f"{len(pngs)} scenes -> {a.out}.rgb, {a.out}.jsonl")


if __name__ == "__main__":
    main()
