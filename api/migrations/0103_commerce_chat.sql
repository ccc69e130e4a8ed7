-- Chat per order between its customer, chef and courier (seed §8), and staff.
CREATE TABLE IF NOT EXISTS order_messages (
    id           bigserial PRIMARY KEY,
    order_id     uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sender_id    text        NOT NULL,
    sender_role  text        NOT NULL,
    body         text        NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS order_messages_order ON order_messages (order_id, id DESC);

-- Read receipts: the newest message each participant has read (only ever moves forward).
CREATE TABLE IF NOT EXISTS order_message_reads (
    order_id      uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    reader_id     text        NOT NULL,
    reader_role   text        NOT NULL,
    last_read_id  bigint      NOT NULL,
    read_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, reader_id)
);
