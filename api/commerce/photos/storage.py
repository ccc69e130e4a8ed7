"""Where photo bytes live: one interface, a local folder (default) and S3-compatible object
storage (AWS S3, MinIO). Both hand out expiring signed URLs; nothing else reads the bytes.

Object keys are ``<photo id>/<variant>.<ext>`` (see `object_key`), checked on every read so
a URL can never name a path outside the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from api.commerce.photos import signing
from api.problems import Problem
from api.settings import PhotoSettings, Settings

S3Client = Any
"""boto3's S3 client (boto3 ships no type information)."""

FILES_PATH = "/api/v1/photos/files"
"""Where the local store's signed URLs point (served by commerce, public: the signature is
the key)."""
_KEY_RE = re.compile(r"^[0-9a-f-]{36}/(original|thumb)\.(jpg|png|webp)$")
STORE_RETRY_AFTER_S = 2


def _unavailable(store: str, exc: BaseException) -> Problem:
    return Problem(503, f"the photo store cannot be used now ({type(exc).__name__})",
                   code="store_unavailable", extra={"store": store},
                   headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


def object_key(photo_id: str, variant: str, extension: str) -> str:
    return f"{photo_id}/{variant}.{extension}"


def valid_key(key: str) -> bool:
    return _KEY_RE.match(key) is not None


class PhotoStorage(Protocol):
    """Puts, gets and deletes objects by key, and signs URLs that expire."""

    name: str

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, keys: list[str]) -> None: ...

    def url(self, key: str, expires_at: int, now: int) -> str:
        """A URL that serves the object until ``expires_at`` (epoch seconds)."""
        ...


class LocalStorage:
    """Files under a folder (``DATA_DIR/photos``); URLs are commerce's own, HMAC-signed."""

    name = "local"

    def __init__(self, root: Path, key: bytes, base_url: str = "") -> None:
        self.root = root
        self.key = key
        self.base_url = base_url

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"not a photo key: {key!r}")
        return self.root / key

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a photo.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".up-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(self._write, key, data)
        except OSError as exc:  # a full or read-only disk: retryable, not a bug
            raise _unavailable("local", exc) from exc

    def _read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, key)

    def _unlink(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # other variants still there
                path.parent.rmdir()

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._unlink, keys)

    def url(self, key: str, expires_at: int, now: int) -> str:
        sig = signing.signature(self.key, key, expires_at)
        query = urlencode({"exp": expires_at, "sig": sig})
        return f"{self.base_url}{FILES_PATH}/{quote(key)}?{query}"

    def verify(self, key: str, expires_at: int, sig: str, now: int) -> bool:
        return valid_key(key) and signing.verify(self.key, key, expires_at, sig, now)


class S3Storage:
    """An S3-compatible bucket through boto3 (calls run in a thread). URLs are S3 presigned
    GETs (SigV4, computed locally by botocore: no request to sign one)."""

    name = "s3"

    def __init__(self, client: S3Client, bucket: str, signer: S3Client | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.signer = signer or client
        """Signs URLs: a client for the public endpoint when browsers reach S3 elsewhere."""

    async def _call(self, fn: Any, /, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("s3", exc) from exc

    async def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError:
            await self._call(self.client.create_bucket, Bucket=self.bucket)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(self.client.put_object, Bucket=self.bucket, Key=key, Body=data,
                         ContentType=content_type)

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self._call(self.client.delete_objects, Bucket=self.bucket,
                             Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})

    def url(self, key: str, expires_at: int, now: int) -> str:
        url: str = self.signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=max(1, expires_at - now))
        return url


def s3_client(photos: PhotoSettings, endpoint_url: str = "") -> S3Client:
    """A boto3 S3 client for the settings (path-style addressing, which MinIO needs)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint_url or photos.s3_endpoint_url or None,
        region_name=photos.s3_region,
        aws_access_key_id=photos.s3_access_key_id or None,
        aws_secret_access_key=photos.s3_secret_access_key or None,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}))


def open_storage(settings: Settings) -> PhotoStorage:
    """The store the settings name: S3 when ``PHOTOS_STORAGE=s3``, else ``DATA_DIR/photos``."""
    photos = settings.photos
    if photos.storage == "s3":
        signer = s3_client(photos, photos.s3_public_url) if photos.s3_public_url else None
        return S3Storage(s3_client(photos), photos.s3_bucket, signer)
    secret = photos.url_key or settings.server.jwt_secret
    if secret is None:
        raise ValueError("signed photo URLs need PHOTOS_URL_KEY or JWT_SECRET")
    return LocalStorage(settings.server.data_dir / "photos", signing.derive_key(secret))


__all__ = ["FILES_PATH", "LocalStorage", "PhotoStorage", "S3Storage", "object_key",
           "open_storage", "s3_client", "valid_key"]
