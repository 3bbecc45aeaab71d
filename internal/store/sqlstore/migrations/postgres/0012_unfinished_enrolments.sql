-- Channels whose device never sent its first TokenUpdate (the profile's
-- installation failed after Authenticate): the hourly sweep finds them here.
-- token_at stays 0 until a TokenUpdate; a token APNs dropped later leaves it
-- set, so those channels stay out.
CREATE INDEX apple_channels_unfinished ON apple_channels(created_at) WHERE push_token IS NULL AND checked_out = 0 AND token_at = 0;
