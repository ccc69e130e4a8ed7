-- The kitchen's street address: couriers are sent there (DeliveryDetails.pickup_address).
ALTER TABLE chef_profiles ADD COLUMN IF NOT EXISTS address text NOT NULL DEFAULT '';
