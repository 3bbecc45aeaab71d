-- A person's Managed Apple Account, when it is not their e-mail, as a keyed
-- blind index beside the e-mail's: no two people of a tenant may be known
-- by one account name. Erasure clears it with the rest.
ALTER TABLE subjects ADD COLUMN apple_id_index BYTEA;
CREATE UNIQUE INDEX subjects_apple_id ON subjects(tenant_id, apple_id_index);
