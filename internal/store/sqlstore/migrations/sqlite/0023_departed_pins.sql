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

-- Company Macs that left before this table existed keep what leaving keeps
-- now (actions.KeepPINPastDeparture), from what their records still show:
-- the newest acknowledged erase with a PIN, or else the newest acknowledged
-- lock with a PIN when the Mac never checked in after it. Their serial
-- numbers' indexes went when they left: they are found by device ID.
INSERT INTO departed_pins (id, tenant_id, device_id, serial_index, action, pin_sealed, sent_at, kept_at, expires_at)
SELECT a.id, a.tenant_id, a.device_id, NULL, a.action, a.pin_sealed, a.updated_at, d.deprovisioned_at,
       d.deprovisioned_at + 31536000000000
FROM device_actions a JOIN devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id
WHERE d.deprovisioned_at > 0 AND d.platform = 'macos' AND d.ownership NOT IN ('personal', 'user_enrolled')
  AND a.state = 'done' AND a.pin_sealed IS NOT NULL
  AND a.id = (SELECT MAX(b.id) FROM device_actions b WHERE b.tenant_id = a.tenant_id AND b.device_id = a.device_id
              AND b.action = a.action AND b.state = 'done' AND b.pin_sealed IS NOT NULL)
  AND (a.action = 'wipe'
       OR (a.action = 'lock' AND d.last_seen_at <= a.updated_at + 60000000
           AND NOT EXISTS (SELECT 1 FROM device_actions w WHERE w.tenant_id = a.tenant_id AND w.device_id = a.device_id
                           AND w.action = 'wipe' AND w.state = 'done' AND w.pin_sealed IS NOT NULL)));
