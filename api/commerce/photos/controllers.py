"""Photo endpoints: chefs upload kitchen, profile, banner and dish photos; couriers upload
proof of delivery; anyone follows a public photo's stable path; signed URLs serve bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect

from api.auth import ALL_ROLES, IdentityDep, Role, roles
from api.commerce.deps import PhotoServiceDep
from api.commerce.photos import schemas as s
from api.commerce.photos.storage import LocalStorage
from api.problems import Problem

PUBLIC = {"public": True}


@dataclass
class PhotoUpload:
    """A multipart form with the image in its ``file`` field."""

    file: UploadFile


Upload = Annotated[PhotoUpload, Body(media_type=RequestEncodingType.MULTI_PART)]


async def _bytes(form: PhotoUpload) -> bytes:
    try:
        return await form.file.read()
    finally:
        await form.file.close()


class ChefPhotosController(Controller):
    """A chef's own photos: only to their own kitchen and their own dishes."""

    path = "/chef"
    tags = ["photos"]
    guards = [roles(Role.CHEF)]

    @post("/photos", summary="Upload a kitchen, profile or banner photo (multipart `file`)")
    async def upload(self, data: Upload, identity: IdentityDep, photos: PhotoServiceDep,
                     kind: FromQuery[s.ChefPhotoKind] = "kitchen") -> s.Photo:
        return await photos.upload_chef(identity, kind, await _bytes(data))

    @post("/menu/{item_id:uuid}/photo",
          summary="Upload a dish's photo (multipart `file`); the item's image_url points at it")
    async def upload_dish(self, item_id: FromPath[UUID], data: Upload, identity: IdentityDep,
                          photos: PhotoServiceDep) -> s.Photo:
        return await photos.upload_dish(identity, item_id, await _bytes(data))

    @delete("/photos/{photo_id:uuid}", status_code=204, summary="Delete one of the chef's photos")
    async def remove(self, photo_id: FromPath[UUID], identity: IdentityDep,
                     photos: PhotoServiceDep) -> None:
        await photos.delete_chef_photo(identity, photo_id)


class ProofController(Controller):
    """Proof of delivery: the order's courier uploads; its customer, courier and staff read."""

    path = "/orders/{order_id:uuid}/proof"
    tags = ["photos"]

    @post("", guards=[roles(Role.DELIVERY)],
          summary="Upload a proof-of-delivery photo (multipart `file`)")
    async def upload(self, order_id: FromPath[UUID], data: Upload, identity: IdentityDep,
                     photos: PhotoServiceDep) -> s.Photo:
        return await photos.upload_proof(identity, order_id, await _bytes(data))

    @get("", guards=[roles(*ALL_ROLES)], summary="The order's proof-of-delivery photos")
    async def list_proofs(self, order_id: FromPath[UUID], identity: IdentityDep,
                          photos: PhotoServiceDep) -> s.PhotoList:
        return await photos.proofs(identity, order_id)


class PublicPhotosController(Controller):
    """Public by design, like chef browsing: kitchen and dish photos are shop windows.
    Proof of delivery is never served here (404)."""

    path = "/photos"
    tags = ["photos"]

    @get("/{photo_id:uuid}", opt=PUBLIC, status_code=302,
         summary="Redirect to a fresh signed URL of a chef or dish photo")
    async def follow(self, photo_id: FromPath[UUID], photos: PhotoServiceDep,
                     variant: FromQuery[s.Variant] = "original") -> Redirect:
        url = await photos.public_url(photo_id, variant)
        return Redirect(url, status_code=302, headers={"Cache-Control": "no-store"})

    @get("/files/{key:path}", opt=PUBLIC, summary="A stored photo by its signed URL")
    async def file(self, key: FromPath[str], state: State,
                   exp: Annotated[int, QueryParameter(ge=0)],
                   sig: Annotated[str, QueryParameter(max_length=100)]) -> Response[bytes]:
        storage = state.photos.storage
        key = key.lstrip("/")
        now = int(time.time())
        if not isinstance(storage, LocalStorage) or not storage.verify(key, exp, sig, now):
            raise Problem(403, "the link is invalid or has expired", code="bad_signature")
        data = await storage.get(key)
        if data is None:
            raise Problem(404, "photo not found", code="not_found")
        ext = key.rsplit(".", 1)[-1]
        media = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[ext]
        return Response(data, media_type=media, headers={
            "Cache-Control": f"private, max-age={max(0, exp - now)}",
            "X-Content-Type-Options": "nosniff"})


@get("/chefs/{chef_id:uuid}/photos", opt=PUBLIC, tags=["photos"],
     summary="An approved chef's kitchen photos")
async def kitchen_photos(chef_id: FromPath[UUID], photos: PhotoServiceDep) -> s.PhotoList:
    return await photos.kitchen(chef_id)
