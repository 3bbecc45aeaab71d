-- Steward keeps no account names of the users of a personally owned
-- device; channels opened before that rule lose theirs now, not only at
-- their user's next TokenUpdate.
UPDATE apple_user_channels SET account_index = NULL
WHERE account_index IS NOT NULL AND EXISTS (
    SELECT 1 FROM devices d
    WHERE d.tenant_id = apple_user_channels.tenant_id AND d.id = apple_user_channels.device_id
      AND d.ownership IN ('personal', 'user_enrolled'));
