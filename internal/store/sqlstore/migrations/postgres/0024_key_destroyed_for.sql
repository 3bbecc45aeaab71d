-- Why a data key was destroyed: 'departure' for a device that left
-- management (deprovisioned, retired, wiped), '' for an erasure of its
-- person or a key destroyed before this column. The vault is never in a
-- backup, so after a restore it is what tells a corporate device that left
-- (to be deprovisioned again) from one that only lost its person.
ALTER TABLE data_keys ADD COLUMN destroyed_for TEXT NOT NULL DEFAULT '';
