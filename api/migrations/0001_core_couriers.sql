-- Core's own tables (commerce's tables come in their own migrations; the services never
-- share a table). Courier history: who was where in which state, for audit and KPIs.
CREATE TABLE IF NOT EXISTS courier_status_history (
    id          bigserial PRIMARY KEY,
    courier_id  text        NOT NULL,
    status      text        NOT NULL,
    order_id    text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS courier_status_history_courier_at
    ON courier_status_history (courier_id, at DESC);
