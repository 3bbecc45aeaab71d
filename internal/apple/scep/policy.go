package scep

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	minRSABits = 2048
	// maxRSABits bounds the work a request can make us do.
	maxRSABits = 8192
)

// checkCSR refuses requests Steward will not sign: a bad signature, a weak
// or unknown key, or a subject that does not name one device.
func checkCSR(csr *x509.CertificateRequest) error {
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return err
	}
	if err := csr.CheckSignature(); err != nil {
		return refusal(failBadMessageCheck, "csr_signature_invalid", "certificate request signature does not verify")
	}
	return checkNames(csr)
}

func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return refusal(failBadRequest, "key_not_accepted", fmt.Sprintf("RSA key of %d bits; %d to %d bits are accepted", n, minRSABits, maxRSABits))
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return refusal(failBadRequest, "key_not_accepted", "EC key on an unsupported curve; P-256 and P-384 are accepted")
	default:
		return refusal(failBadRequest, "key_not_accepted", fmt.Sprintf("%T keys are not accepted; use RSA or EC P-256/P-384", pub))
	}
}

func checkNames(csr *x509.CertificateRequest) error {
	cn := csr.Subject.CommonName
	switch {
	case cn == "":
		return refusal(failBadRequest, "subject_not_accepted", "subject common name is required")
	case !utf8.ValidString(cn) || utf8.RuneCountInString(cn) > maxCNRunes:
		return refusal(failBadRequest, "subject_not_accepted", "subject common name must be valid text of at most 64 characters")
	case strings.Contains(cn, "*"):
		return refusal(failBadRequest, "subject_not_accepted", "wildcard subject common names are not issued")
	}
	// A device identity names a device, never a host, an address or a person.
	if len(csr.DNSNames) > 0 || len(csr.IPAddresses) > 0 || len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return refusal(failBadRequest, "subject_not_accepted", "subject alternative names are not issued")
	}
	return nil
}
