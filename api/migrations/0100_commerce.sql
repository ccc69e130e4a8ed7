-- Commerce's tables (seed §4.2 / §5). Money is bigint cents, times are timestamptz (UTC).
CREATE TABLE IF NOT EXISTS users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text        NOT NULL,
    phone           text,
    password_hash   text        NOT NULL,
    first_name      text        NOT NULL DEFAULT '',
    last_name       text        NOT NULL DEFAULT '',
    avatar          text        NOT NULL DEFAULT '',
    role            text        NOT NULL DEFAULT 'customer'
                    CHECK (role IN ('customer', 'chef', 'delivery', 'admin', 'fleet_manager')),
    email_verified  boolean     NOT NULL DEFAULT false,
    phone_verified  boolean     NOT NULL DEFAULT false,
    is_active       boolean     NOT NULL DEFAULT true,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower ON users (lower(email));
CREATE UNIQUE INDEX IF NOT EXISTS users_phone ON users (phone) WHERE phone IS NOT NULL;

-- Rotating refresh tokens: a family is one login; reuse of a spent token revokes the family.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  text        NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE IF NOT EXISTS password_resets (
    token_hash  text PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS addresses (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        text        NOT NULL DEFAULT '',
    line1        text        NOT NULL,
    line2        text        NOT NULL DEFAULT '',
    city         text        NOT NULL,
    state        text        NOT NULL,
    postal_code  text        NOT NULL,
    country      text        NOT NULL DEFAULT 'US',
    latitude     double precision NOT NULL,
    longitude    double precision NOT NULL,
    is_default   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS addresses_user ON addresses (user_id);

CREATE TABLE IF NOT EXISTS chef_profiles (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid        NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    business_name       text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    cuisines            text[]      NOT NULL DEFAULT '{}',
    specialties         text[]      NOT NULL DEFAULT '{}',
    profile_image       text        NOT NULL DEFAULT '',
    banner_image        text        NOT NULL DEFAULT '',
    status              text        NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'rejected', 'suspended')),
    rating              double precision NOT NULL DEFAULT 0,
    total_reviews       integer     NOT NULL DEFAULT 0,
    total_orders        integer     NOT NULL DEFAULT 0,
    is_online           boolean     NOT NULL DEFAULT false,
    accepting_orders    boolean     NOT NULL DEFAULT false,
    service_radius      double precision NOT NULL DEFAULT 10,
    latitude            double precision NOT NULL,
    longitude           double precision NOT NULL,
    operating_hours     jsonb       NOT NULL DEFAULT '{}',
    timezone            text        NOT NULL DEFAULT 'UTC',
    delivery_fee_cents  bigint      NOT NULL DEFAULT 0 CHECK (delivery_fee_cents >= 0),
    minimum_order_cents bigint      NOT NULL DEFAULT 0 CHECK (minimum_order_cents >= 0),
    prep_time_minutes   integer     NOT NULL DEFAULT 30 CHECK (prep_time_minutes > 0),
    price_range         text        NOT NULL DEFAULT '',
    verified_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chef_profiles_status ON chef_profiles (status);

CREATE TABLE IF NOT EXISTS menu_items (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chef_id       uuid        NOT NULL REFERENCES chef_profiles (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    price_cents   bigint      NOT NULL CHECK (price_cents > 0),
    image_url     text        NOT NULL DEFAULT '',
    category      text        NOT NULL DEFAULT '',
    dietary_tags  text[]      NOT NULL DEFAULT '{}',
    is_available  boolean     NOT NULL DEFAULT true,
    prep_time     integer     NOT NULL DEFAULT 0 CHECK (prep_time >= 0),
    deleted_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS menu_items_chef ON menu_items (chef_id) WHERE deleted_at IS NULL;

-- One cart per user, one chef per cart.
CREATE TABLE IF NOT EXISTS carts (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    chef_id     uuid REFERENCES chef_profiles (id) ON DELETE SET NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cart_items (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid        NOT NULL REFERENCES carts (user_id) ON DELETE CASCADE,
    menu_item_id  uuid        NOT NULL REFERENCES menu_items (id) ON DELETE CASCADE,
    quantity      integer     NOT NULL CHECK (quantity > 0),
    notes         text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, menu_item_id)
);

CREATE TABLE IF NOT EXISTS promo_codes (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code                 text        NOT NULL,
    discount_type        text        NOT NULL CHECK (discount_type IN ('percent', 'fixed')),
    discount_value       bigint      NOT NULL CHECK (discount_value > 0),
    min_order_cents      bigint      NOT NULL DEFAULT 0,
    max_discount_cents   bigint,
    max_uses             integer,
    uses                 integer     NOT NULL DEFAULT 0,
    expires_at           timestamptz,
    is_active            boolean     NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS promo_codes_code ON promo_codes (upper(code));

CREATE TABLE IF NOT EXISTS orders (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_number         text        NOT NULL UNIQUE,
    customer_id          uuid        NOT NULL REFERENCES users (id),
    chef_id              uuid        NOT NULL REFERENCES chef_profiles (id),
    delivery_id          text,
    status               text        NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'accepted', 'preparing', 'ready',
                                           'picked_up', 'delivering', 'delivered',
                                           'cancelled', 'refunded')),
    delivery_address_id  uuid        NOT NULL,
    delivery_lat         double precision NOT NULL,
    delivery_lng         double precision NOT NULL,
    delivery_address     text        NOT NULL DEFAULT '',
    pickup_lat           double precision NOT NULL,
    pickup_lng           double precision NOT NULL,
    distance_m           integer     NOT NULL DEFAULT 0,
    subtotal_cents       bigint      NOT NULL,
    delivery_fee_cents   bigint      NOT NULL,
    service_fee_cents    bigint      NOT NULL,
    tax_cents            bigint      NOT NULL,
    discount_cents       bigint      NOT NULL DEFAULT 0,
    tip_cents            bigint      NOT NULL DEFAULT 0,
    total_cents          bigint      NOT NULL,
    promo_code           text        NOT NULL DEFAULT '',
    instructions         text        NOT NULL DEFAULT '',
    prep_time_minutes    integer     NOT NULL DEFAULT 30,
    scheduled_for        timestamptz,
    estimated_ready      timestamptz,
    estimated_delivery   timestamptz,
    accepted_at          timestamptz,
    preparing_at         timestamptz,
    prepared_at          timestamptz,
    picked_up_at         timestamptz,
    delivering_at        timestamptz,
    delivered_at         timestamptz,
    cancelled_at         timestamptz,
    cancel_reason        text        NOT NULL DEFAULT '',
    payment_id           uuid,
    payment_status       text        NOT NULL DEFAULT 'unpaid'
                         CHECK (payment_status IN ('unpaid', 'paid', 'refunded')),
    payment_method       text        NOT NULL DEFAULT '',
    idempotency_key      text,
    request_hash         text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (total_cents = subtotal_cents + delivery_fee_cents + service_fee_cents + tax_cents
                         - discount_cents + tip_cents),
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, created_at DESC);
CREATE INDEX IF NOT EXISTS orders_chef ON orders (chef_id, created_at DESC);
CREATE INDEX IF NOT EXISTS orders_delivery ON orders (delivery_id) WHERE delivery_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS order_items (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    menu_item_id    uuid        NOT NULL,
    name            text        NOT NULL,
    price_cents     bigint      NOT NULL,
    quantity        integer     NOT NULL CHECK (quantity > 0),
    subtotal_cents  bigint      NOT NULL,
    notes           text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS order_items_order ON order_items (order_id);

CREATE TABLE IF NOT EXISTS promo_redemptions (
    promo_id     uuid NOT NULL REFERENCES promo_codes (id),
    customer_id  uuid NOT NULL REFERENCES users (id),
    order_id     uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (promo_id, customer_id)
);

-- One row per payment attempt.
CREATE TABLE IF NOT EXISTS payments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id         uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    customer_id      uuid        NOT NULL REFERENCES users (id),
    amount_cents     bigint      NOT NULL CHECK (amount_cents >= 0),
    currency         text        NOT NULL DEFAULT 'usd',
    status           text        NOT NULL,
    method           text        NOT NULL DEFAULT '',
    provider         text        NOT NULL,
    provider_ref     text        NOT NULL,
    client_secret    text        NOT NULL,
    failure_reason   text        NOT NULL DEFAULT '',
    refunded_cents   bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id, created_at DESC);

CREATE TABLE IF NOT EXISTS refunds (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id    uuid        NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    amount_cents  bigint      NOT NULL CHECK (amount_cents > 0),
    status        text        NOT NULL,
    provider_ref  text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reviews (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id     uuid        NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
    customer_id  uuid        NOT NULL REFERENCES users (id),
    chef_id      uuid        NOT NULL REFERENCES chef_profiles (id),
    rating       smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reviews_chef ON reviews (chef_id, created_at DESC);
CREATE INDEX IF NOT EXISTS reviews_customer ON reviews (customer_id, created_at DESC);

CREATE TABLE IF NOT EXISTS delivery_partners (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid        NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    vehicle_type      text        NOT NULL DEFAULT 'bike'
                      CHECK (vehicle_type IN ('bike', 'scooter', 'car')),
    license_number    text        NOT NULL DEFAULT '',
    rating            double precision NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- In-app notifications (the user's inbox).
CREATE TABLE IF NOT EXISTS notifications (
    id          bigserial PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    title       text        NOT NULL,
    body        text        NOT NULL DEFAULT '',
    data        jsonb       NOT NULL DEFAULT '{}',
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id DESC);

-- Transactional outbox: events committed with the state change, relayed to JetStream.
CREATE TABLE IF NOT EXISTS outbox (
    id          bigserial PRIMARY KEY,
    subject     text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
