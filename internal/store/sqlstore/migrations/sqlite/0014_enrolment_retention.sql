-- Enrolments go with their device when retention purges it, and unused ones
-- some time after their link expired: each links a person to a device.
CREATE INDEX enrolments_device ON enrolments(tenant_id, device_id) WHERE device_id <> '';
CREATE INDEX enrolments_unused ON enrolments(expires_at) WHERE used_at = 0;
