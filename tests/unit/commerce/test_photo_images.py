"""Checking and cleaning uploads (pure): the type comes from the bytes, the pixel count
from the header before decoding, metadata never survives, thumbnails fit their box; the
local store's signed URLs and the S3 adapter's presigned URLs (built locally by botocore:
no S3 server is contacted, and none is available here)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from api.commerce.photos import signing
from api.commerce.photos.images import CleanImage, ImageLimits, ImageRejected, clean_image, sniff
from api.commerce.photos.storage import LocalStorage, S3Storage, object_key, s3_client
from api.settings import PhotoSettings

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=4_000_000, thumb_px=64)
KEY = "0b6f3a52-8f3e-4c1e-9a55-6b1c2d3e4f50/original.jpg"


def jpeg_with_gps(width: int = 300, height: int = 200, orientation: int = 1) -> bytes:
    img = Image.new("RGB", (width, height), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (12.0, 58.0, 17.0)}  # GPS latitude
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def test_type_is_sniffed_from_the_bytes() -> None:
    """Magic numbers decide: JPEG, PNG and WebP are recognised; text, GIF and a PDF are not."""
    webp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(webp, "WEBP")
    assert sniff(jpeg_with_gps()[:16]) == "image/jpeg"
    assert sniff(png_claiming(1, 1)[:16]) == "image/png"
    assert sniff(webp.getvalue()[:16]) == "image/webp"
    for other in (b"hello world, I am a photo", b"GIF89a\x01\x00", b"%PDF-1.7\n"):
        assert sniff(other) is None
        result = clean_image(other, LIMITS)
        assert isinstance(result, ImageRejected)
        assert result.status == 415


def test_exif_is_stripped_and_orientation_applied() -> None:
    """The stored photo and thumbnail carry no EXIF (no GPS, no camera); a photo taken
    sideways (orientation 6) is stored upright; the thumbnail fits thumb_px."""
    result = clean_image(jpeg_with_gps(300, 200, orientation=6), LIMITS)
    assert isinstance(result, CleanImage)
    assert Image.open(io.BytesIO(jpeg_with_gps())).getexif()  # the input had EXIF
    for rendition in (result.original, result.thumbnail):
        img = Image.open(io.BytesIO(rendition.data))
        assert not img.getexif()
        assert "exif" not in img.info
        assert (img.width, img.height) == (rendition.width, rendition.height)
    assert (result.original.width, result.original.height) == (200, 300)
    assert max(result.thumbnail.width, result.thumbnail.height) == 64


def test_size_and_pixel_limits() -> None:
    """Too many bytes is 413 before anything is parsed; a header claiming 100k x 100k
    pixels is 413 before a single pixel is decoded; a truncated image is 422."""
    big = clean_image(b"\xff\xd8\xff" + b"\x00" * LIMITS.max_bytes, LIMITS)
    assert isinstance(big, ImageRejected)
    assert (big.status, big.code) == (
        413, "photo_too_large")
    bomb = clean_image(png_claiming(100_000, 100_000), LIMITS)
    assert isinstance(bomb, ImageRejected)
    assert (bomb.status, bomb.code) == (413, "photo_too_many_pixels")
    broken = clean_image(jpeg_with_gps()[:200], LIMITS)
    assert isinstance(broken, ImageRejected)
    assert broken.status == 422


def test_local_urls_are_signed_and_expire(tmp_path: Path) -> None:
    """A URL verifies until its expiry only, with its own key and object only."""
    key = signing.derive_key("x" * 32)
    store = LocalStorage(tmp_path, key)
    url = store.url(KEY, expires_at=1_000, now=900)
    q = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == f"/api/v1/photos/files/{KEY}"
    exp, sig = int(q["exp"][0]), q["sig"][0]
    assert store.verify(KEY, exp, sig, now=999)
    assert not store.verify(KEY, exp, sig, now=1_000)  # expired
    assert not store.verify(KEY, exp + 1, sig, now=999)  # expiry tampered with
    assert not store.verify(KEY.replace("original", "thumb"), exp, sig, now=999)
    assert not LocalStorage(tmp_path, signing.derive_key("y" * 32)).verify(KEY, exp, sig, 999)
    assert not store.verify("../../etc/passwd", exp, sig, now=999)
    assert object_key("a", "thumb", "png") == "a/thumb.png"


def test_s3_presigned_urls_are_built_locally() -> None:
    """The S3 adapter's URLs are SigV4 presigned GETs on the configured endpoint (path
    style, for MinIO) with the requested lifetime; building one sends no request."""
    settings = PhotoSettings(storage="s3", s3_endpoint_url="http://127.0.0.1:9",
                             s3_bucket="photos", s3_access_key_id="AKIDEXAMPLE",
                             s3_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    store = S3Storage(s3_client(settings), settings.s3_bucket)
    url = store.url(KEY, expires_at=1_900, now=1_000)
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:9", f"/photos/{KEY}")
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert q["X-Amz-Expires"] == ["900"]
    assert q["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert len(q["X-Amz-Signature"][0]) == 64


async def test_local_store_that_cannot_write_is_a_503(tmp_path: Path) -> None:
    """A store whose folder cannot be written answers 503 with Retry-After (an outage),
    never a 500; what it holds reads back byte for byte."""
    import pytest

    from api.problems import Problem

    store = LocalStorage(tmp_path / "photos", signing.derive_key("x" * 32))
    await store.put(KEY, b"abc", "image/jpeg")
    assert await store.get(KEY) == b"abc"
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    with pytest.raises(Problem) as caught:
        await LocalStorage(blocked, store.key).put(KEY, b"abc", "image/jpeg")
    assert caught.value.status_code == 503
    assert caught.value.headers == {"Retry-After": "2"}
