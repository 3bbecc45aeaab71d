package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"time"
)

// NewEnrolled is a device that speaks to serverURL (check-ins and commands)
// as if it had enrolled there, with a self-signed P-256 identity, without
// enrolling: for tests of what drives devices, such as a load generator,
// against a stand-in MDM server.
func NewEnrolled(client *http.Client, serverURL string) (*Device, error) {
	d := NewWithKey(client, false, nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: d.UDID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if d.cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	d.key, d.envelopeKey = key, nil
	d.serverURL, d.checkinURL = serverURL, serverURL
	return d, nil
}
