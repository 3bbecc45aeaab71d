-- final marks a leaving device's removal after which Steward sends it no
-- other although attempts were left: it gave up early (the device's
-- identity expired, or it stayed silent too long). 1 when so.
ALTER TABLE device_actions ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
