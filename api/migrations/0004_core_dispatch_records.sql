-- What dispatch must get back after Redis lost its live state (api/core/dispatch/rebuild.py)
-- and the streams do not hold: each courier's last availability and who declined which order.
-- Written by core (api/core/dispatch/records.py) as couriers call availability and decline;
-- keyed by the deployment's namespace (HOMECHEF_NAMESPACE), like the Redis state they restore.
CREATE TABLE IF NOT EXISTS courier_availability (
    namespace   text        NOT NULL,
    courier_id  text        NOT NULL,
    online      boolean     NOT NULL,
    vehicle     text,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (namespace, courier_id)
);

CREATE TABLE IF NOT EXISTS dispatch_declines (
    namespace   text        NOT NULL,
    order_id    text        NOT NULL,
    courier_id  text        NOT NULL,
    declined_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, order_id, courier_id)
);
-- The watchdog deletes declines older than the streams' 7 days (api/core/dispatch/watchdog.py).
CREATE INDEX IF NOT EXISTS dispatch_declines_declined_at ON dispatch_declines (declined_at);
