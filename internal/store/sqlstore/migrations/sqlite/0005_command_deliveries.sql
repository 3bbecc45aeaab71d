-- Deliveries in a row that the device left unanswered: a command that makes
-- the device's MDM client fail mid-exchange would otherwise be resent at
-- every check-in and hold up every command queued behind it.
ALTER TABLE commands ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;
