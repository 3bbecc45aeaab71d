// Package securezip writes password-protected ZIP archives that ordinary
// people can open with common tools (7-Zip, Keka, The Unarchiver, File Roller).
//
// Entries use the WinZip AES format, version AE-2: compression method 99 with
// an 0x9901 extra field, AES-256 in counter mode, a per-entry random salt,
// PBKDF2-HMAC-SHA1 key derivation and a truncated HMAC-SHA1 over the
// ciphertext. AE-2 leaves the CRC field zero so the CRC of the plaintext does
// not leak; the HMAC authenticates the contents instead.
//
// What stays visible without the password: entry names, sizes and
// modification times. Callers must keep personal data out of entry names.
package securezip
