-- What a person was shown when consenting, so that the consent proves it
-- (GDPR Art. 7(1)). A text is tenant-level (no personal data), keyed by the
-- SHA-256 of its UTF-8 bytes (lowercase hex) and stored once however many
-- consents reference it; a reader recomputes the digest to detect a change.
CREATE TABLE consent_texts (
    tenant_id      TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    body           TEXT NOT NULL,
    first_shown_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);

-- shown: notice-and-summary (Steward showed the notice and the summary
-- referenced here), outside-steward (an admin recorded a consent given
-- elsewhere: Steward showed nothing), not-recorded (before this migration).
ALTER TABLE consents ADD COLUMN shown TEXT NOT NULL DEFAULT 'not-recorded';
ALTER TABLE consents ADD COLUMN notice_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN summary_sha256 TEXT NOT NULL DEFAULT '';
UPDATE consents SET shown = 'outside-steward' WHERE method = 'admin-recorded';
