package scep

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// DefaultValidity is short, so that a device identity whose key leaked, or
// that outlived its device, stops working within a quarter: Steward renews
// each managed device's identity a month before it expires (see
// identityRenewalWindow in package mdm), which leaves two months of use.
const DefaultValidity = 90 * 24 * time.Hour

// clockSkew back-dates certificates so a device whose clock runs a little
// slow accepts its new certificate at once.
const clockSkew = 5 * time.Minute

// issue signs a device identity certificate for an already checked CSR,
// with the tenant's issuing CA. Only the subject's common name, which
// checkNames vetted, comes from the request: the device chooses nothing
// else about its identity, neither other subject attributes (O, OU, C,
// serialNumber, ...) nor any extension it asks for.
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
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              leafKeyUsage(csr.PublicKey),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyIdentifier(csr.PublicKey),
		AuthorityKeyId:        issuer.SubjectKeyId,
	}
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

// leafKeyUsage is digitalSignature, plus keyEncipherment for RSA keys,
// which can encrypt; RFC 5480 section 3 forbids it for EC keys.
func leafKeyUsage(pub any) x509.KeyUsage {
	if _, ok := pub.(*rsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	return x509.KeyUsageDigitalSignature
}
