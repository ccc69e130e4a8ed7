-- Customers' saved chefs and dishes (seed §3.4). A chef or dish deleted for good takes its
-- rows with it; one suspended or soft-deleted is only hidden from the list.
CREATE TABLE IF NOT EXISTS favorite_chefs (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chef_id     uuid        NOT NULL REFERENCES chef_profiles (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, chef_id)
);
CREATE TABLE IF NOT EXISTS favorite_dishes (
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    menu_item_id  uuid        NOT NULL REFERENCES menu_items (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, menu_item_id)
);
CREATE INDEX IF NOT EXISTS favorite_chefs_chef ON favorite_chefs (chef_id);
CREATE INDEX IF NOT EXISTS favorite_dishes_item ON favorite_dishes (menu_item_id);
