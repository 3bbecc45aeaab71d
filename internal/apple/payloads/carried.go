package payloads

import (
	"crypto/x509"
	"encoding/pem"

	"software.sslmate.com/src/go-pkcs12"
)

// CarriedCertificates returns the certificates a built profile installs:
// each PKCS#12 payload's certificate and the chain it carries. Unlike
// Build it does not check dates, so an identity that expired on the
// device is still known. Withheld secrets give nothing: restore them with
// WithSecrets first.
func (d Definition) CarriedCertificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, p := range d.Payloads {
		if p.PKCS12 != nil {
			out = append(out, identityCertificates(p.PKCS12.Data.Reveal(), string(p.PKCS12.Password.Reveal()))...)
		}
	}
	return out
}

// CarriedCertificates returns the certificates an uploaded profile (as
// ValidateCustom accepts it, signed or not) installs: those of its
// certificate payloads (com.apple.security.root, pkcs1 and pem, each DER
// or PEM), and the certificate and chain of each PKCS#12 identity
// (com.apple.security.pkcs12, or an Exchange account's embedded one) that
// the profile's own password opens. An identity without that password is
// left out: the device asks its user for it, and Steward never learns it.
// It returns an apperr invalid_request error when the data is not a
// readable profile.
func CarriedCertificates(mobileconfig []byte) ([]*x509.Certificate, error) {
	list, err := payloadDicts(mobileconfig)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, p := range list {
		switch typ, _ := p["PayloadType"].(string); typ {
		case "com.apple.security.root", "com.apple.security.pkcs1", "com.apple.security.pem":
			data, _ := p["PayloadContent"].([]byte)
			out = append(out, certificatesIn(data)...)
		case "com.apple.security.pkcs12":
			data, _ := p["PayloadContent"].([]byte)
			password, _ := p["Password"].(string)
			out = append(out, identityCertificates(data, password)...)
		case "com.apple.eas.account":
			data, _ := p["Certificate"].([]byte)
			password, _ := p["CertificatePassword"].(string)
			out = append(out, identityCertificates(data, password)...)
		}
	}
	return out, nil
}

// certificatesIn reads a certificate payload's content: one DER
// certificate, or PEM blocks, as profile tools write either.
func certificatesIn(data []byte) []*x509.Certificate {
	if cert, err := x509.ParseCertificate(data); err == nil {
		return []*x509.Certificate{cert}
	}
	var out []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, cert)
		}
	}
	return out
}

// identityCertificates opens a PKCS#12 identity with password and returns
// its certificate, then its chain; nothing when it does not open, or would
// take more key-derivation iterations than admin input may ask for (this
// runs for device reports, inside transactions).
func identityCertificates(p12 []byte, password string) []*x509.Certificate {
	if len(p12) == 0 || checkPKCS12Iterations(p12) != nil {
		return nil
	}
	_, cert, chain, err := pkcs12.DecodeChain(p12, password)
	if err != nil {
		return nil
	}
	return append([]*x509.Certificate{cert}, chain...)
}
