-- When each channel last sent its push token. APNs answers a dead token
-- with the time it found it dead; a token the device registered again
-- after that time is live and must not be dropped.
ALTER TABLE apple_channels ADD COLUMN token_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apple_user_channels ADD COLUMN token_at INTEGER NOT NULL DEFAULT 0;
