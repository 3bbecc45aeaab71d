-- Device identity certificates are renewed before they expire, with a
-- re-issued enrolment profile: the renewal job reads the channels by expiry
-- and remembers the command it queued, so that it neither repeats itself
-- nor starves the devices behind one that stays offline.
ALTER TABLE apple_channels ADD COLUMN renewal_command TEXT NOT NULL DEFAULT '';
ALTER TABLE apple_channels ADD COLUMN renewal_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX apple_channels_cert_expiry ON apple_channels(cert_not_after);
