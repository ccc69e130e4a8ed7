"""Cleaning an uploaded photo (sniff, pixel check, EXIF transpose, re-encode, thumbnail) vs
the least any upload path must do: decode the JPEG and encode it again.

    python -m bench.photos --megapixels 12 --runs 15 --seed 1

CPU only (no store): the photo is a seeded 4:3 JPEG of noise over a gradient, which is
harder to compress than a real photo, so both figures are upper bounds.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time

import numpy as np
from PIL import Image

from api.commerce.photos.images import CleanImage, ImageLimits, clean_image


def _photo(megapixels: float, seed: int) -> bytes:
    height = int(math.sqrt(megapixels * 1e6 * 3 / 4))
    width = height * 4 // 3
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 64).astype("uint8")
    pixels[:, :, 0] += np.linspace(0, 191, width, dtype="uint8")
    exif = Image.Exif()
    exif[0x0112] = 6  # taken sideways: cleaning must turn it upright
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _baseline(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        img.save(io.BytesIO(), "JPEG", quality=85)


def _times(fn: object, data: bytes, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(data)  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data = _photo(args.megapixels, args.seed)
    limits = ImageLimits(max_bytes=64 * 2**20, max_pixels=100_000_000, thumb_px=320)
    result = clean_image(data, limits)
    assert isinstance(result, CleanImage)
    rows = [("clean_image (upright, re-encoded, thumbnail)", _times(
                lambda d: clean_image(d, limits), data, args.runs)),
            ("baseline: decode + encode JPEG", _times(_baseline, data, args.runs))]
    print(f"photo {args.megapixels:g} MP, {len(data) / 1e6:.1f} MB in; "
          f"{len(result.original.data) / 1e6:.1f} MB out, thumbnail "
          f"{result.thumbnail.width}x{result.thumbnail.height}; {args.runs} runs")
    print(f"{'':48} {'p50 ms':>8} {'max ms':>8}")
    for name, ms in rows:
        print(f"{name:48} {statistics.median(ms):8.0f} {max(ms):8.0f}")


if __name__ == "__main__":
    main()
