-- The Find My PIN a Mac's lock or erase carried, sealed under the master key, so
-- that an admin can give it to whoever must unlock the Mac (an erased Intel Mac
-- asks for it before it can be set up again).
ALTER TABLE device_actions ADD COLUMN pin_sealed BYTEA;
