// Package backup writes and reads Steward's encrypted, consistent backups.
//
// A backup file is a small plaintext header (magic, format version, creation
// time, engine, schema version, tables with their columns and row counts,
// the data key sealed under the master key) followed by a gzip stream of
// typed rows, encrypted with a fresh Tink streaming-AEAD keyset. The header
// is authenticated as associated data of both the sealed key and the body,
// so it cannot be altered or swapped onto another file.
//
// The key vault (tenant_keysets, data_keys, vault_tombstones) is never written to a backup,
// nor are sessions and leases. Personal data is encrypted with per-person
// keys that live only in the vault; erasing a person destroys their key
// there, so their data in every older backup becomes unreadable too:
// crypto-shredding reaches backups. The vault's tombstones record the
// other decisions a restore must not undo (revoked links, deleted tenants).
// On restore those tables are kept as they are in the target database.
package backup
