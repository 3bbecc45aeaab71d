-- The Find My PIN of a Mac that left management at a firmware lock or an
-- erase, kept after its device record is purged (30 days after it left): a
-- Mac found later still asks for it. No person is named: the row holds the
-- serial number's blind index, to find the PIN from the Mac in hand, and the
-- PIN sealed under the master key, bound to the action that carried it (id).
CREATE TABLE departed_pins (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    serial_index BLOB,
    action       TEXT NOT NULL,
    pin_sealed   BLOB NOT NULL,
    sent_at      INTEGER NOT NULL,
    kept_at      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX departed_pins_serial ON departed_pins (tenant_id, serial_index);
CREATE INDEX departed_pins_device ON departed_pins (tenant_id, device_id);
CREATE INDEX departed_pins_expiry ON departed_pins (expires_at);
