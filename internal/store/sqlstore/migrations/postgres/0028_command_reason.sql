-- The reason an admin gave for a command, kept with it: a command sent to
-- many devices is audited once for the tenant, so the person whose device
-- it reached learns why from the command itself (their data export).
ALTER TABLE commands ADD COLUMN reason TEXT NOT NULL DEFAULT '';
