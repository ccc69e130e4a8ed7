-- Dispatch history, written asynchronously from the DISPATCH stream (api/core/history.py).
-- Live state stays in Redis; these rows are for audit and KPIs. Every write is keyed by the
-- event that caused it, so a redelivered or replayed event writes nothing twice.
ALTER TABLE courier_status_history ADD COLUMN IF NOT EXISTS event_key text;
CREATE UNIQUE INDEX IF NOT EXISTS courier_status_history_event_key
    ON courier_status_history (event_key);

-- One row per assignment (an accepted offer or a fleet force-assign) and its milestones.
CREATE TABLE IF NOT EXISTS dispatch_assignments (
    order_id        text        NOT NULL,
    offer_id        text        NOT NULL,
    courier_id      text        NOT NULL,
    assigned_at     timestamptz NOT NULL,
    picked_up_at    timestamptz,
    delivering_at   timestamptz,
    delivered_at    timestamptz,
    unassigned_at   timestamptz,
    unassign_reason text,
    PRIMARY KEY (order_id, offer_id)
);
CREATE INDEX IF NOT EXISTS dispatch_assignments_courier_assigned
    ON dispatch_assignments (courier_id, assigned_at DESC);
