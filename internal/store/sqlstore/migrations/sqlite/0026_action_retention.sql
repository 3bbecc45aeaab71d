-- Finished remote actions are purged a year after they finished, by their
-- last change (updated_at): the purge reads them through this index rather
-- than the whole table.
CREATE INDEX device_actions_updated ON device_actions(updated_at);
