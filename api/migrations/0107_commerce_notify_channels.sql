-- Notifications leave by e-mail, SMS and Web Push (docs/notifications.md).

-- Each user's channels; no row: the defaults (e-mail and push on, SMS off).
CREATE TABLE IF NOT EXISTS notification_preferences (
    user_id     uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email       boolean     NOT NULL DEFAULT true,
    sms         boolean     NOT NULL DEFAULT false,
    push        boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A browser's Web Push subscription (PushManager.subscribe): where and how to encrypt.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id          bigserial   PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint    text        NOT NULL UNIQUE CHECK (char_length(endpoint) <= 2048),
    p256dh      text        NOT NULL,
    auth        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);

-- The delivery outbox: one row per notification and destination, written in the order's
-- transaction; workers lease due rows (locked_until), send, and mark them sent or due again
-- later (next_attempt_at). A worker that dies mid-send leaves its lease to run out.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id               bigserial   PRIMARY KEY,
    notification_id  bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    address          text        NOT NULL,
    subscription_id  bigint      REFERENCES push_subscriptions (id) ON DELETE SET NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due
    ON notification_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS notification_deliveries_of
    ON notification_deliveries (notification_id);
