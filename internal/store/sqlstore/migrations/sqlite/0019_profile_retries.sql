-- The hourly retry of failed profile sends: how many sends of the version
-- failed in a row, and when the next is due (0: none). The partial index
-- holds only states with a retry due, so the job never scans the rest.
ALTER TABLE device_profiles ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_profiles ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX device_profiles_retry ON device_profiles(tenant_id, device_id) WHERE retry_at > 0;
