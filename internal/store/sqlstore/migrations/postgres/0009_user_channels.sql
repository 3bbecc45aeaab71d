-- User channels (macOS, Shared iPad): the MDM channel of each user who logs
-- in on an enrolled device, with its own push token and its own commands.
-- Steward keeps no name: a user is found by a keyed index of the ID the
-- device sends, and an admin can look one up by a keyed index of the
-- account's short name.
CREATE TABLE apple_user_channels (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    -- Both NULL once the channel is closed: a closed channel forgets whose it was.
    user_index     BYTEA,
    account_index  BYTEA,
    topic          TEXT NOT NULL DEFAULT '',
    push_token     BYTEA,
    push_magic     TEXT NOT NULL DEFAULT '',
    checked_out    INTEGER NOT NULL DEFAULT 0,
    last_checkin   BIGINT NOT NULL DEFAULT 0,
    push_due_at    BIGINT NOT NULL DEFAULT 0,
    push_attempts  INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX apple_user_channels_user ON apple_user_channels(tenant_id, device_id, user_index);
CREATE INDEX apple_user_channels_push ON apple_user_channels(push_due_at);

-- The user channel a command is for ('' for the device channel). Each
-- channel's queue is read and bounded apart, so it joins the queue's index.
ALTER TABLE commands ADD COLUMN user_channel TEXT NOT NULL DEFAULT '';
DROP INDEX commands_device;
CREATE INDEX commands_queue ON commands(tenant_id, device_id, user_channel, state, id);
