package scep

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
)

// The tenant CA's RSA-3072 key is made to last ten years, and signing each
// device certificate with it cost more than all the rest of an enrolment.
// A P-256 issuing CA, issued by the tenant CA, signs device certificates
// instead, about a hundred times faster. It is not in GetCACert (clients
// encrypt to every certificate there, and envelopes need RSA); each CertRep
// carries it after the device's certificate.
//
// The issuing CA is a trust anchor of its own, beside the tenant CA (see
// Roots): certificates the tenant CA signed directly stay valid, and a
// tenant CA made before issuing CAs existed, whose path length is zero,
// need not be replaced.
type issuingCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

const issuerCNPrefix = "Steward Device Issuing CA "

func issuerSettingKey(tenantID string) string { return "scep-issuer:" + tenantID }

// loadOrCreateIssuer opens the tenant's issuing CA, creating it on first use
// the way LoadOrCreateCA does: the first node's PutIfAbsent wins.
func (ca *CA) loadOrCreateIssuer(ctx context.Context, tenantName string) error {
	key := issuerSettingKey(ca.tenantID)
	raw, err := loadOrCreate(ctx, ca.settings, key, func() ([]byte, error) { return ca.newIssuerValue(tenantName) })
	if err != nil {
		return fmt.Errorf("loading the issuing CA: %w", err)
	}
	cert, signer, err := openKeyPair(raw, ca.sealer, key)
	if err != nil {
		return fmt.Errorf("opening the issuing CA: %w", err)
	}
	ecKey, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("the stored issuing CA key is not ECDSA")
	}
	if err := cert.CheckSignatureFrom(ca.cert); err != nil {
		return fmt.Errorf("the stored issuing CA was not issued by the tenant CA: %w", err)
	}
	ca.issuer = &issuingCA{cert: cert, key: ecKey}
	return nil
}

func (ca *CA) newIssuerValue(tenantName string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the issuing CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: truncateCN(issuerCNPrefix + tenantName)},
		NotBefore:             ca.cert.NotBefore,
		NotAfter:              ca.cert.NotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		AuthorityKeyId:        ca.cert.SubjectKeyId,
	}
	value, err := certifyAndSeal(tmpl, ca.cert, key, ca.key, ca.sealer, issuerSettingKey(ca.tenantID))
	if err != nil {
		return nil, fmt.Errorf("issuing the issuing CA: %w", err)
	}
	return value, nil
}

// Roots is the tenant's trust anchors for device certificates: the tenant CA
// and its issuing CA.
func (ca *CA) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	pool.AddCert(ca.issuer.cert)
	return pool
}

// IssuedByTenant reports whether cert was signed by the tenant CA or its
// issuing CA.
func (ca *CA) IssuedByTenant(cert *x509.Certificate) bool {
	return cert.CheckSignatureFrom(ca.issuer.cert) == nil || cert.CheckSignatureFrom(ca.cert) == nil
}
