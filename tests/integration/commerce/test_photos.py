"""Photos through the API on the local folder store: a chef uploads to their own kitchen
and dishes only, the image fields point at the stored photo, signed URLs serve it without
EXIF and expire; oversized and non-image uploads are refused; proof of delivery is taken by
the order's courier after pick-up and read only by its customer, courier and staff."""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from api.commerce.photos import signing
from api.commerce.photos.storage import LocalStorage
from streams.events import CourierAssigned, OrderPickedUp
from tests.integration.commerce.conftest import Api, dispatch_event, wait_order
from tests.unit.commerce.test_photo_images import jpeg_with_gps, png_claiming

V1 = "/api/v1"


def upload(data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg") -> dict[str, Any]:
    return {"file": (name, data, ctype)}


async def fetch_image(api: Api, url: str) -> Image.Image:
    r = await api.client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    return Image.open(io.BytesIO(r.content))


async def test_chef_photos(api: Api) -> None:
    """A dish photo fills the item's image_url with a stable path that redirects to a
    signed URL; the bytes come back without EXIF; another chef cannot upload to that dish;
    kitchen photos list publicly; refusals (text, oversized, pixel bomb, tampered or
    expired URL) are problems and change nothing; deleting clears the field."""
    admin = await api.admin()
    chef, other = await api.chef(admin), await api.chef(admin)
    item = await api.menu_item(chef, 1200, name="Idli")
    r = await api.client.post(f"{V1}/chef/menu/{item['id']}/photo",
                              files=upload(jpeg_with_gps(640, 480)), headers=chef["headers"])
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["kind"], photo["width"], photo["height"]) == ("dish", 640, 480)
    r = await api.client.get(f"{V1}/chefs/{chef['profile']['id']}/menu")
    assert r.json()["data"][0]["image_url"] == photo["path"] == f"{V1}/photos/{photo['id']}"

    r = await api.client.get(photo["path"], follow_redirects=False)  # no token: public
    assert r.status_code == 302
    img = await fetch_image(api, r.headers["location"])
    assert (img.format, img.size, dict(img.getexif())) == ("JPEG", (640, 480), {})
    r = await api.client.get(photo["path"], params={"variant": "thumb"}, follow_redirects=False)
    thumb = await fetch_image(api, r.headers["location"])
    assert max(thumb.size) == api.settings.photos.thumb_px

    r = await api.client.post(f"{V1}/chef/menu/{item['id']}/photo", files=upload(jpeg_with_gps()),
                              headers=other["headers"])
    assert r.status_code == 404, r.text
    refusals = [
        (upload(b"just some text, honestly a jpeg"), 415, "not_an_image"),
        (upload(b"\xff\xd8\xff" + b"\0" * api.settings.photos.max_bytes), 413,
         "photo_too_large"),
        (upload(png_claiming(50_000, 50_000), "tiny.png", "image/png"), 413,
         "photo_too_many_pixels"),
    ]
    for files, status, code in refusals:
        r = await api.client.post(f"{V1}/chef/menu/{item['id']}/photo", files=files,
                                  headers=chef["headers"])
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith(code)
    r = await api.client.get(f"{V1}/chefs/{chef['profile']['id']}/menu")
    assert r.json()["data"][0]["image_url"] == photo["path"]  # unchanged

    r = await api.client.post(f"{V1}/chef/photos", params={"kind": "kitchen"},
                              files=upload(jpeg_with_gps()), headers=chef["headers"])
    assert r.status_code == 201, r.text
    kitchen = r.json()
    r = await api.client.get(f"{V1}/chefs/{chef['profile']['id']}/photos")
    assert [p["id"] for p in r.json()["data"]] == [kitchen["id"]]
    await fetch_image(api, r.json()["data"][0]["thumbnail_url"])

    # Signed URLs: a tampered signature and an expired one are 403.
    assert api.settings.server.jwt_secret
    store = LocalStorage(api.settings.server.data_dir / "photos",
                         signing.derive_key(api.settings.server.jwt_secret))
    url = kitchen["url"]
    r = await api.client.get(url.replace("sig=", "sig=x"))
    assert r.status_code == 403
    key = url.split("/files/")[1].split("?")[0]
    r = await api.client.get(store.url(key, int(time.time()) - 1, int(time.time()) - 60))
    assert (r.status_code, r.json()["type"]) == (403, "urn:homechef:problem:bad_signature")

    r = await api.client.delete(f"{V1}/chef/photos/{photo['id']}", headers=other["headers"])
    assert r.status_code == 404
    r = await api.client.delete(f"{V1}/chef/photos/{photo['id']}", headers=chef["headers"])
    assert r.status_code == 204
    r = await api.client.get(f"{V1}/chefs/{chef['profile']['id']}/menu")
    assert r.json()["data"][0]["image_url"] == ""
    r = await api.client.get(photo["path"], follow_redirects=False)
    assert r.status_code == 404


async def test_proof_of_delivery(api: Api) -> None:
    """Only the order's courier uploads, once the food is picked up; its customer, courier
    and staff read it; another customer, courier or the chef get 404."""
    admin = await api.admin()
    chef = await api.chef(admin)
    item = await api.menu_item(chef, 2000, name="Thali")
    customer, stranger = await api.register(), await api.register()
    address = await api.address(customer)
    order = await api.order(customer, chef, [{"item": item, "quantity": 1}], address)
    await api.pay(customer, order["id"])
    courier, other_courier = await api.register("delivery"), await api.register("delivery")
    cid = courier["user"]["id"]
    url = f"{V1}/orders/{order['id']}/proof"
    r = await api.client.put(f"{V1}/chef/orders/{order['id']}/status",
                             json={"status": "accepted"}, headers=chef["headers"])
    assert r.status_code == 200
    now = int(time.time() * 1000)
    await dispatch_event(api, CourierAssigned(order_id=order["id"], courier_id=cid,
                                              offer_id="o1", at_ms=now), "assigned")
    await wait_order(api, customer, order["id"], delivery_id=cid)

    r = await api.client.post(url, files=upload(jpeg_with_gps()), headers=courier["headers"])
    assert (r.status_code, r.json()["type"]) == (409, "urn:homechef:problem:not_picked_up")
    await dispatch_event(api, OrderPickedUp(order_id=order["id"], courier_id=cid, at_ms=now),
                         "picked_up")
    await wait_order(api, customer, order["id"], status="picked_up")
    r = await api.client.post(url, files=upload(jpeg_with_gps()),
                              headers=other_courier["headers"])
    assert r.status_code == 404
    r = await api.client.post(url, files=upload(b"%PDF-1.7 not a photo", "p.jpg"),
                              headers=courier["headers"])
    assert r.status_code == 415
    r = await api.client.post(url, files=upload(jpeg_with_gps()), headers=courier["headers"])
    assert r.status_code == 201, r.text
    proof = r.json()
    assert (proof["kind"], proof["path"]) == ("proof", "")

    for who in (customer, courier, admin):
        r = await api.client.get(url, headers=who["headers"])
        assert [p["id"] for p in r.json()["data"]] == [proof["id"]], r.text
    for who in (stranger, other_courier, chef):
        r = await api.client.get(url, headers=who["headers"])
        assert r.status_code == 404
    r = await api.client.get(f"{V1}/photos/{proof['id']}", follow_redirects=False)
    assert r.status_code == 404  # never through the public path
    await fetch_image(api, proof["url"])
