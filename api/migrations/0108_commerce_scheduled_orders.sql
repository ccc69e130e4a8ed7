-- Scheduled orders: when the kitchen should start one (slot - ride - prep); NULL: at once.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS start_cooking_at timestamptz;
