-- When a person's last device left management (0: never, or one is
-- managed again): their record is erased once a retention period has
-- passed with no device and no usable enrolment link.
ALTER TABLE subjects ADD COLUMN unmanaged_since INTEGER NOT NULL DEFAULT 0;
CREATE INDEX subjects_unmanaged ON subjects(unmanaged_since, id) WHERE unmanaged_since > 0;
-- People whose devices have all left, as far as the devices still on record
-- show, count from their last departure.
UPDATE subjects SET unmanaged_since = (SELECT MAX(d.deprovisioned_at) FROM devices d
    WHERE d.tenant_id = subjects.tenant_id AND d.subject_id = subjects.id)
WHERE state = 'active'
    AND EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = subjects.tenant_id AND d.subject_id = subjects.id)
    AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = subjects.tenant_id AND d.subject_id = subjects.id
        AND d.deprovisioned_at = 0);
