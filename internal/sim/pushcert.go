package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"time"
)

// PushCertificatePEM makes a self-signed certificate and key shaped like an
// MDM push certificate from Apple (topic in the subject UID), valid for a
// year. APNs will not accept it; simulated devices and tests need no more.
func PushCertificatePEM(topic string) ([]byte, error) {
	return PushCertificatePEMValid(topic, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
}

// PushCertificatePEMValid is PushCertificatePEM valid from notBefore to
// notAfter.
func PushCertificatePEMValid(topic string, notBefore, notAfter time.Time) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "APSP:simulated", ExtraNames: []pkix.AttributeTypeAndValue{{Type: uid, Value: topic}}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...), nil
}
