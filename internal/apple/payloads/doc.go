// Package payloads turns admin-authored configuration profile definitions
// into Apple .mobileconfig files, and vets custom profiles that admins upload.
//
// A Definition is the JSON an admin sends through the API: profile metadata
// plus a list of typed payloads (Wi-Fi, IKEv2 VPN, Exchange, Mail, passcode,
// restrictions, SCEP, PKCS#12, web clip). ParseDefinition decodes it strictly
// and validates every field; Build encodes the unsigned XML property list,
// which the caller signs with mdmproto.SignProfile and sends in an
// InstallProfile command.
//
// Secrets (passwords, shared secrets, the SCEP challenge, PKCS#12 data) live
// in Secret values. They never leave the package in JSON: encoding a Secret
// always writes the marker {"set":true}. SplitSecrets separates them so the
// caller can encrypt them at rest, WithSecrets puts them back before Build,
// and MergeSecrets lets an API update that echoes the marker keep the stored
// value.
//
// Payload UUIDs are derived from the definition's public content, so building
// the same definition twice gives byte-identical output. Secret values are
// deliberately left out of that derivation: UUIDs appear in device profile
// lists and logs, and a fast hash of a short password could be reversed
// offline. Changing only a password keeps the UUIDs; the device still takes
// the new profile because InstallProfile replaces by PayloadIdentifier.
//
// ValidateCustom checks an uploaded profile (XML, binary or CMS-signed) for
// structure and refuses payloads that would take over device management.
package payloads
