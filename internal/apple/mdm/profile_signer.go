package mdm

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// profileSigner is an operator's certificate, from a CA devices trust,
// that signs the enrolment profiles employees download, so that iOS and
// macOS show them as verified. A tenant's own CA, which signs them
// otherwise, is trusted by no device until the profile installs.
type profileSigner struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate // above cert, its issuer first
	// expiryWarned: the fallback to the tenants' CAs past cert's expiry
	// was logged, once per node rather than per download.
	expiryWarned atomic.Bool
}

// SignProfilesWith makes c sign the enrolment profiles of every tenant, in
// place of each tenant's CA, while it is valid. Call it before serving.
func (s *Service) SignProfilesWith(c tls.Certificate, now time.Time) error {
	if len(c.Certificate) == 0 {
		return errors.New("profile signer: no certificate")
	}
	certs := make([]*x509.Certificate, len(c.Certificate))
	for i, der := range c.Certificate {
		parsed, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("profile signer: certificate %d: %w", i+1, err)
		}
		certs[i] = parsed
	}
	key, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("profile signer: the key cannot sign")
	}
	leaf := certs[0]
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return fmt.Errorf("profile signer: the certificate is valid from %s to %s only", leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly))
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("profile signer: the certificate's key usage does not allow digital signatures")
	}
	s.signer = &profileSigner{cert: leaf, key: key, chain: certs[1:]}
	return nil
}

// enrolmentSigner is who signs a tenant's enrolment profile now: the
// operator's certificate while it is valid, else the tenant's CA.
func (s *Service) enrolmentSigner(trust *tenantTrust, now time.Time) (*x509.Certificate, crypto.Signer, []*x509.Certificate, error) {
	if ps := s.signer; ps != nil {
		if now.Before(ps.cert.NotAfter) {
			return ps.cert, ps.key, ps.chain, nil
		}
		if !ps.expiryWarned.Swap(true) {
			s.log.Error("the profile signing certificate (--profile-signer-cert) has expired: enrolment profiles are signed by "+
				"each tenant's CA and devices show them as not verified until it is replaced", "expired", ps.cert.NotAfter)
		}
	}
	cert, key, err := trust.profileSigner(now)
	return cert, key, []*x509.Certificate{trust.ca.Certificate()}, err
}
