"""Photos in PostgreSQL (who owns what) and the photo store (the bytes).

An upload is checked for permission first, then cleaned (`images.clean_image`, in a
thread: it is CPU work), then both renditions go to the store, and only then does the row
commit, together with the image field it fills (a dish's ``image_url``, a chef's
``profile_image`` / ``banner_image``). A photo a new one replaces is deleted from the store
after the commit. A stranger gets the same 404 as for something that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from api.auth import STAFF, Identity
from api.commerce.ids import user_uuid
from api.commerce.photos import schemas as s
from api.commerce.photos.images import EXTENSION, CleanImage, ImageLimits, clean_image
from api.commerce.photos.storage import PhotoStorage, object_key
from api.problems import Problem
from api.resources import Resources

log = logging.getLogger("homechef.photos")

PHOTO_PATH = "/api/v1/photos"
KITCHEN_PHOTOS_MAX = 20
PROOF_PHOTOS_MAX = 5
PROOF_STATUSES = ("picked_up", "delivering", "delivered")
"""A courier proves delivery once the food is in hand (and may add photos after)."""
_CHEF_FIELD = {"profile": "profile_image", "banner": "banner_image"}
_COLS = ("id, kind, content_type, width, height, bytes, key, thumb_key, created_at, "
         "chef_id, menu_item_id, order_id")


@dataclass(frozen=True, slots=True)
class Photos:
    """The photo store and its limits, one per app (``app.state.photos``)."""

    storage: PhotoStorage
    limits: ImageLimits
    url_ttl_s: int


def _not_found(what: str = "photo") -> Problem:
    return Problem(404, f"{what} not found", code="not_found")


class PhotoService:
    def __init__(self, resources: Resources, photos: Photos) -> None:
        self.db = resources.db
        self.photos = photos

    # -- reading -----------------------------------------------------------------------------

    def _view(self, row: asyncpg.Record, now: int) -> s.Photo:
        expires = now + self.photos.url_ttl_s
        storage = self.photos.storage
        return s.Photo(
            id=str(row["id"]), kind=row["kind"], content_type=row["content_type"],
            width=row["width"], height=row["height"], bytes=row["bytes"],
            url=storage.url(row["key"], expires, now),
            thumbnail_url=storage.url(row["thumb_key"], expires, now),
            expires_at=datetime.fromtimestamp(expires, UTC),
            path="" if row["kind"] == "proof" else f"{PHOTO_PATH}/{row['id']}",
            created_at=row["created_at"])

    async def kitchen(self, chef_id: uuid.UUID) -> s.PhotoList:
        rows = await self.db.fetch(
            f"""SELECT {_COLS} FROM photos p WHERE chef_id = $1 AND kind = 'kitchen'
                AND EXISTS (SELECT 1 FROM chef_profiles c
                            WHERE c.id = p.chef_id AND c.status = 'approved')
                ORDER BY created_at DESC, id""", chef_id)
        now = int(time.time())
        return s.PhotoList(data=[self._view(r, now) for r in rows])

    async def public_url(self, photo_id: uuid.UUID, variant: s.Variant) -> str:
        """A fresh signed URL of a photo anyone may see (not proof of delivery)."""
        row = await self.db.fetchrow(
            "SELECT key, thumb_key FROM photos WHERE id = $1 AND kind <> 'proof'", photo_id)
        if row is None:
            raise _not_found()
        now = int(time.time())
        key = row["thumb_key"] if variant == "thumb" else row["key"]
        return self.photos.storage.url(key, now + self.photos.url_ttl_s, now)

    async def proofs(self, who: Identity, order_id: uuid.UUID) -> s.PhotoList:
        """An order's proof of delivery: its customer, its courier and staff only."""
        order = await self.db.fetchrow(
            "SELECT customer_id::text AS customer_id, delivery_id FROM orders WHERE id = $1",
            order_id)
        allowed = order is not None and (
            who.role in STAFF or who.user_id in (order["customer_id"], order["delivery_id"]))
        if not allowed:
            raise _not_found("order")
        rows = await self.db.fetch(
            f"SELECT {_COLS} FROM photos WHERE order_id = $1 AND kind = 'proof' "
            "ORDER BY created_at, id", order_id)
        now = int(time.time())
        return s.PhotoList(data=[self._view(r, now) for r in rows])

    # -- uploading ---------------------------------------------------------------------------

    async def _clean(self, data: bytes) -> CleanImage:
        result = await asyncio.to_thread(clean_image, data, self.photos.limits)
        if not isinstance(result, CleanImage):
            raise Problem(result.status, result.detail, code=result.code)
        return result

    async def _store(self, photo_id: uuid.UUID, img: CleanImage) -> tuple[str, str]:
        ext = EXTENSION[img.content_type]
        key = object_key(str(photo_id), "original", ext)
        thumb = object_key(str(photo_id), "thumb", ext)
        await self.photos.storage.put(key, img.original.data, img.content_type)
        await self.photos.storage.put(thumb, img.thumbnail.data, img.content_type)
        return key, thumb

    async def _commit(self, conn: asyncpg.Connection, photo_id: uuid.UUID, kind: str,
                      uploader: uuid.UUID, img: CleanImage, keys: tuple[str, str], *,
                      chef_id: uuid.UUID | None = None, menu_item_id: uuid.UUID | None = None,
                      order_id: uuid.UUID | None = None) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"""INSERT INTO photos (id, kind, uploader_id, chef_id, menu_item_id, order_id,
                                    content_type, bytes, width, height, key, thumb_key)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {_COLS}""",
            photo_id, kind, uploader, chef_id, menu_item_id, order_id, img.content_type,
            len(img.original.data), img.original.width, img.original.height, *keys)
        assert row is not None
        return row

    async def _upload(self, data: bytes, kind: str, uploader: uuid.UUID,
                      attach: _Attach) -> s.Photo:
        img = await self._clean(data)
        photo_id = uuid.uuid4()
        keys = await self._store(photo_id, img)
        try:
            async with self.db.acquire() as conn, conn.transaction():
                await attach.check(conn)  # again, under lock: nothing changed meanwhile
                row = await self._commit(conn, photo_id, kind, uploader, img, keys,
                                         chef_id=attach.chef_id,
                                         menu_item_id=attach.menu_item_id,
                                         order_id=attach.order_id)
                replaced = await attach.fill(conn, f"{PHOTO_PATH}/{photo_id}", photo_id)
        except BaseException:
            await self._forget(list(keys))
            raise
        await self._forget([k for r in replaced for k in (r["key"], r["thumb_key"])])
        return self._view(row, int(time.time()))

    async def _forget(self, keys: list[str]) -> None:
        """Delete objects no row points at; a failure leaves an orphan, never a broken row."""
        try:
            await self.photos.storage.delete(keys)
        except Exception:
            log.warning("could not delete %d photo objects", len(keys), exc_info=True)

    async def _chef(self, conn: asyncpg.Connection | asyncpg.Pool, who: Identity) -> uuid.UUID:
        chef_id = await conn.fetchval("SELECT id FROM chef_profiles WHERE user_id = $1",
                                      user_uuid(who.user_id))
        if chef_id is None:
            raise Problem(409, "no chef profile yet", code="chef_profile_missing")
        return uuid.UUID(str(chef_id))

    async def upload_chef(self, who: Identity, kind: s.ChefPhotoKind, data: bytes) -> s.Photo:
        chef_id = await self._chef(self.db, who)
        attach = _Attach(kind=kind, chef_id=chef_id)
        await attach.check(self.db)
        return await self._upload(data, kind, user_uuid(who.user_id), attach)

    async def upload_dish(self, who: Identity, item_id: uuid.UUID, data: bytes) -> s.Photo:
        chef_id = await self._chef(self.db, who)
        attach = _Attach(kind="dish", chef_id=chef_id, menu_item_id=item_id)
        await attach.check(self.db)
        return await self._upload(data, "dish", user_uuid(who.user_id), attach)

    async def upload_proof(self, who: Identity, order_id: uuid.UUID, data: bytes) -> s.Photo:
        attach = _Attach(kind="proof", order_id=order_id, courier_id=who.user_id)
        await attach.check(self.db)
        return await self._upload(data, "proof", user_uuid(who.user_id), attach)

    async def delete_chef_photo(self, who: Identity, photo_id: uuid.UUID) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            chef_id = await self._chef(conn, who)
            row = await conn.fetchrow(
                """DELETE FROM photos WHERE id = $1 AND chef_id = $2
                   RETURNING kind, key, thumb_key, menu_item_id""", photo_id, chef_id)
            if row is None:
                raise _not_found()
            path = f"{PHOTO_PATH}/{photo_id}"
            await conn.execute("UPDATE menu_items SET image_url = '' WHERE image_url = $1",
                               path)
            await conn.execute(
                """UPDATE chef_profiles SET
                     profile_image = CASE WHEN profile_image = $2 THEN '' ELSE profile_image END,
                     banner_image = CASE WHEN banner_image = $2 THEN '' ELSE banner_image END
                   WHERE id = $1""", chef_id, path)
        await self._forget([row["key"], row["thumb_key"]])


@dataclass(frozen=True, slots=True)
class _Attach:
    """What a new photo belongs to: who may add it there, and the field it fills."""

    kind: str
    chef_id: uuid.UUID | None = None
    menu_item_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    courier_id: str = ""

    async def check(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        if self.kind == "dish":
            found = await conn.fetchval(
                "SELECT 1 FROM menu_items WHERE id = $1 AND chef_id = $2 AND deleted_at IS NULL",
                self.menu_item_id, self.chef_id)
            if found is None:
                raise _not_found("menu item")
        elif self.kind == "kitchen":
            n = await conn.fetchval(
                "SELECT count(*) FROM photos WHERE chef_id = $1 AND kind = 'kitchen'",
                self.chef_id)
            if n >= KITCHEN_PHOTOS_MAX:
                raise Problem(409, f"a kitchen may have at most {KITCHEN_PHOTOS_MAX} photos",
                              code="too_many_photos")
        elif self.kind == "proof":
            order = await conn.fetchrow(
                "SELECT status, delivery_id FROM orders WHERE id = $1", self.order_id)
            if order is None or order["delivery_id"] != self.courier_id:
                raise _not_found("order")
            if order["status"] not in PROOF_STATUSES:
                raise Problem(409, "proof of delivery is taken once the order is picked up",
                              code="not_picked_up", extra={"order_status": order["status"]})
            n = await conn.fetchval(
                "SELECT count(*) FROM photos WHERE order_id = $1 AND kind = 'proof'",
                self.order_id)
            if n >= PROOF_PHOTOS_MAX:
                raise Problem(409, f"an order may have at most {PROOF_PHOTOS_MAX} proof photos",
                              code="too_many_photos")

    async def fill(self, conn: asyncpg.Connection, path: str,
                   photo_id: uuid.UUID) -> list[asyncpg.Record]:
        """Point the image field at the new photo; the rows of photos it replaces."""
        if self.kind == "dish":
            await conn.execute(
                "UPDATE menu_items SET image_url = $2, updated_at = now() WHERE id = $1",
                self.menu_item_id, path)
            return list(await conn.fetch(
                """DELETE FROM photos WHERE menu_item_id = $1 AND kind = 'dish' AND id <> $2
                   RETURNING key, thumb_key""", self.menu_item_id, photo_id))
        if self.kind in _CHEF_FIELD:
            await conn.execute(
                f"UPDATE chef_profiles SET {_CHEF_FIELD[self.kind]} = $2, updated_at = now() "
                "WHERE id = $1", self.chef_id, path)
            return list(await conn.fetch(
                """DELETE FROM photos WHERE chef_id = $1 AND kind = $2 AND id <> $3
                   RETURNING key, thumb_key""", self.chef_id, self.kind, photo_id))
        return []
