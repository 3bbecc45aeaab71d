-- The AccessRights of the last enrolment profile built for an enrolment
-- (0: none recorded), so that the profile re-sent to renew the device's
-- identity grants what the installed one did, whatever the policy says
-- today: a device may refuse a management payload that changed.
ALTER TABLE enrolments ADD COLUMN access_rights INTEGER NOT NULL DEFAULT 0;
-- Corporate and shared devices were always granted every right (8191).
UPDATE enrolments SET access_rights = 8191 WHERE ownership IN ('corporate', 'shared');
