-- Photos: chefs' kitchens, profile and banner, dishes, couriers' proof of delivery. The
-- bytes live in the photo store (a folder or an S3 bucket) under `key` and `thumb_key`.
CREATE TABLE IF NOT EXISTS photos (
    id            uuid PRIMARY KEY,
    kind          text        NOT NULL
                  CHECK (kind IN ('kitchen', 'profile', 'banner', 'dish', 'proof')),
    uploader_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chef_id       uuid        REFERENCES chef_profiles (id) ON DELETE CASCADE,
    menu_item_id  uuid        REFERENCES menu_items (id) ON DELETE CASCADE,
    order_id      uuid        REFERENCES orders (id) ON DELETE CASCADE,
    content_type  text        NOT NULL,
    bytes         integer     NOT NULL CHECK (bytes > 0),
    width         integer     NOT NULL CHECK (width > 0),
    height        integer     NOT NULL CHECK (height > 0),
    key           text        NOT NULL,
    thumb_key     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- What each kind belongs to: a chef (kitchen, profile, banner), a dish, an order.
    CHECK ((kind IN ('kitchen', 'profile', 'banner') AND chef_id IS NOT NULL)
        OR (kind = 'dish' AND menu_item_id IS NOT NULL AND chef_id IS NOT NULL)
        OR (kind = 'proof' AND order_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS photos_chef ON photos (chef_id, kind, created_at DESC)
    WHERE chef_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS photos_order ON photos (order_id, created_at) WHERE order_id IS NOT NULL;
