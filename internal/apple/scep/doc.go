// Package scep is Steward's per-tenant SCEP certificate authority and server
// (RFC 8894). An Apple device's enrolment profile carries a SCEP payload with
// a single-use challenge; the device sends a PKCSReq with it, receives its
// identity certificate (clientAuth only) and signs every MDM request with it.
// Before it expires the device renews with a RenewalReq signed by that
// certificate, without a challenge.
//
// Every tenant has its own CA, so a certificate issued for one tenant never
// authenticates a device to another. The CA key is sealed at rest under the
// master key and bound to its tenant.
package scep
