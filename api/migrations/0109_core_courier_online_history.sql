-- Couriers going online and offline, with where they were and on what, in the courier
-- history (api/core/dispatch/records.py): what a recorded day for the lab needs
-- (api/lab_record.py, docs/lab.md). Rows of the dispatch stream leave these empty.
ALTER TABLE courier_status_history ADD COLUMN IF NOT EXISTS lat double precision;
ALTER TABLE courier_status_history ADD COLUMN IF NOT EXISTS lng double precision;
ALTER TABLE courier_status_history ADD COLUMN IF NOT EXISTS vehicle text;
