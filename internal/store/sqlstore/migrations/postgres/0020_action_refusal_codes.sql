-- A refused action's stable, machine-readable reason beside its text.
-- Actions refused before this column carry the catch-all code.
ALTER TABLE device_actions ADD COLUMN refusal_code TEXT NOT NULL DEFAULT '';
UPDATE device_actions SET refusal_code = 'refused' WHERE state = 'refused';
