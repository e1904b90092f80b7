"""A fake dataset in the `dit scene --dataset` format, for smoke-testing the pipeline only (NOT
training data: the images are random blocky colour fields, the captions random word strings):

  fake_data.py --out PREFIX --count N [--size 128] [--seed 0]
writes PREFIX.rgb (N x size x size x 3 uint8) and PREFIX.jsonl ({"index", "captions", "objects"}).
"""
import argparse
import json

import numpy as np

WORDS = ("a an the red green blue yellow orange purple white black small large circle square triangle star "
         "ring cross solid striped dotted outlined left right of above below in front behind and").split()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    with open(a.out + ".rgb", "wb") as f_rgb, open(a.out + ".jsonl", "w") as f_js:
        for i in range(a.count):
            cells = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)   # 4x4 random colour blocks
            img = np.repeat(np.repeat(cells, a.size // 4, 0), a.size // 4, 1)
            f_rgb.write(np.ascontiguousarray(img).tobytes())
            caps = [" ".join(rng.choice(WORDS, size=rng.integers(3, 12))) for _ in range(3)]
            f_js.write(json.dumps({"index": i, "captions": caps, "objects": []}) + "\n")


if __name__ == "__main__":
    main()
