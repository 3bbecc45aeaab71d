-- When a person's last device left management (0: never, or one is
-- managed again): their record is erased once a retention period has
-- passed with no device and no usable enrolment link.
ALTER TABLE subjects ADD COLUMN unmanaged_since BIGINT NOT NULL DEFAULT 0;
CREATE INDEX subjects_unmanaged ON subjects(unmanaged_since, id) WHERE unmanaged_since > 0;
