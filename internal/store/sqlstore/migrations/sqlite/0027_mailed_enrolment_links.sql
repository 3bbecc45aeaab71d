-- An enrolment link can be mailed to its person instead of handed to the
-- admin who made it: its key is minted when the mail goes out, so nobody
-- else ever holds it, and only such a link may carry the person's
-- permission for a full wipe of their own device.
ALTER TABLE enrolments ADD COLUMN link_mailed INTEGER NOT NULL DEFAULT 0;
-- The record a notification's minted key belongs to (an enrolment's ID).
ALTER TABLE notifications ADD COLUMN ref TEXT NOT NULL DEFAULT '';
