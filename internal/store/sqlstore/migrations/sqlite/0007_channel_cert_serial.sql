-- The serial of the identity certificate a channel is bound to (decimal),
-- so that when the device moves to a renewed certificate the old one's
-- SCEP record is released and it can no longer be renewed. Channels from
-- before have none until their next renewal.
ALTER TABLE apple_channels ADD COLUMN cert_serial TEXT NOT NULL DEFAULT '';
