package scep

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// DefaultValidity is Apple's ceiling for TLS leaf certificates, kept for
// device identities too so that renewals happen well within a year.
const DefaultValidity = 397 * 24 * time.Hour

// clockSkew back-dates certificates so a device whose clock runs a little
// slow accepts its new certificate at once.
const clockSkew = 5 * time.Minute

// issue signs a device identity certificate for an already checked CSR,
// with the tenant's issuing CA.
func (ca *CA) issue(csr *x509.CertificateRequest, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	issuer := ca.issuer.cert
	notBefore := now.Add(-clockSkew)
	if notBefore.Before(issuer.NotBefore) {
		notBefore = issuer.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	if !notAfter.After(now) {
		return nil, errors.New("scep: the tenant CA has expired; it must be replaced before devices can enrol")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               csr.Subject,
		DNSNames:              csr.DNSNames,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyIdentifier(csr.PublicKey),
		AuthorityKeyId:        issuer.SubjectKeyId,
	}
	// Only the subject and DNS names come from the request: any other
	// extension it asks for is ignored.
	tmpl.Subject.ExtraNames = nil
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, csr.PublicKey, ca.issuer.key)
	if err != nil {
		return nil, fmt.Errorf("scep: signing device certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("scep: parsing issued certificate: %w", err)
	}
	return cert, nil
}
