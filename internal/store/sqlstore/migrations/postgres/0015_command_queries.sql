-- The keys a DeviceInformation command asks for, comma-separated, beside its
-- sealed payload: a device's answer is held to them (names only, no values).
-- Commands queued before this column have none; their result reads them
-- from the payload.
ALTER TABLE commands ADD COLUMN queries TEXT NOT NULL DEFAULT '';
