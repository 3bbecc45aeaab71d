-- The hourly retry of failed profile sends: how many sends of the version
-- failed in a row, and when the next is due (0: none). The partial index
-- holds only states with a retry due, so the job never scans the rest.
ALTER TABLE device_profiles ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_profiles ADD COLUMN retry_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX device_profiles_retry ON device_profiles(tenant_id, device_id) WHERE retry_at > 0;
-- States that failed before the upgrade count one failed attempt and are
-- due at the first hourly run (1 µs after the epoch is long past); those
-- whose command was cancelled (an admin's decision) are left alone, as
-- after the upgrade; the error text tells them once the command is purged.
UPDATE device_profiles SET attempts = 1, retry_at = 1
WHERE status IN ('failed', 'removal_failed', 'not_applicable_removal_failed')
  AND error NOT LIKE 'cancelled%'
  AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.tenant_id = device_profiles.tenant_id
      AND c.id = device_profiles.command_id AND c.state = 'cancelled');
