// Package apns wakes Apple devices for MDM: it reads the MDM push certificate
// an administrator uploads and sends MDM pushes through the APNs provider API
// over HTTP/2. Device tokens and PushMagic strings are device secrets: this
// package never logs them or puts them in error strings.
package apns

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// TopicPrefix starts every MDM push topic; Apple issues MDM push certificates
// whose subject UID is the topic.
const TopicPrefix = "com.apple.mgmt."

// MaxCertificateSize bounds an uploaded certificate bundle; real ones are a
// few kilobytes.
const MaxCertificateSize = 64 << 10

// ExpiryWarningWindow is how close to expiry Status starts warning. Push
// certificates last a year; once one lapses devices stop waking, and replacing
// it with a new one (instead of renewing) changes the topic, which forces every
// device to re-enroll.
const ExpiryWarningWindow = 30 * 24 * time.Hour

// oidUserID is the subject attribute (UID, RFC 4519) that holds the push topic.
var oidUserID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// Errors ParsePushCertificate wraps; test them with errors.Is.
var (
	ErrEmptyCertificate    = errors.New("apns: push certificate data is empty")
	ErrCertificateTooLarge = errors.New("apns: push certificate data is too large")
	ErrUnreadable          = errors.New("apns: push certificate is neither PEM nor PKCS#12")
	ErrWrongPassword       = errors.New("apns: wrong password for the PKCS#12 push certificate")
	ErrNoCertificate       = errors.New("apns: no certificate found")
	ErrNoPrivateKey        = errors.New("apns: no private key found")
	ErrEncryptedKey        = errors.New("apns: encrypted PEM private keys are not supported; upload the PKCS#12 (.p12) file with its password instead")
	ErrUnsupportedKey      = errors.New("apns: unsupported private key type")
	ErrKeyMismatch         = errors.New("apns: private key does not match the certificate")
	ErrNotPushTopic        = errors.New("apns: certificate is not an MDM push certificate")
	ErrExpired             = errors.New("apns: push certificate has expired")
	ErrNotYetValid         = errors.New("apns: push certificate is not valid yet")
)

// PushCertificate is a validated MDM push certificate with its private key.
type PushCertificate struct {
	Topic      string    // subject UID, e.g. com.apple.mgmt.External.<uuid>; the apns-topic header
	CommonName string    // subject CN, e.g. "APSP:<uuid>"
	Serial     string    // serial number in lowercase hex, to tell renewals apart
	NotBefore  time.Time // start of validity
	NotAfter   time.Time // end of validity: renew before this or lose every device

	tls tls.Certificate // leaf, chain and key for the TLS client handshake
}

// ParsePushCertificate reads a push certificate and its private key from PEM
// (certificate and key blocks in any order; PKCS#1, PKCS#8 or SEC 1 EC keys,
// unencrypted; password is ignored) or from PKCS#12 (decrypted with password).
// It refuses a key that does not match the certificate, a subject UID that is
// not an MDM topic, and a certificate that is expired or not valid yet at
// now (the caller's clock, so that a service's injected clock decides).
func ParsePushCertificate(data []byte, password string, now time.Time) (*PushCertificate, error) {
	c, err := LoadPushCertificate(data, password)
	if err != nil {
		return nil, err
	}
	if err := c.checkValidAt(now); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadPushCertificate reads a certificate ParsePushCertificate accepted
// earlier, without its date checks: a stored certificate that has since
// expired must still show as expired in the console and the metrics, not
// vanish as unreadable.
func LoadPushCertificate(data []byte, password string) (*PushCertificate, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, ErrEmptyCertificate
	case len(data) > MaxCertificateSize:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrCertificateTooLarge, len(data), MaxCertificateSize)
	}
	var (
		b   *bundle
		err error
	)
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		b, err = readPEM(data)
	} else {
		b, err = readPKCS12(data, password)
	}
	if err != nil {
		return nil, err
	}
	return b.validate()
}

// bundle is a certificate set and key before validation.
type bundle struct {
	leaf  *x509.Certificate
	chain []*x509.Certificate
	key   crypto.Signer
}

func readPKCS12(data []byte, password string) (*bundle, error) {
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return nil, ErrWrongPassword
	case err != nil:
		// The library's messages describe structure, never key bytes.
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	signer, err := asSigner(key)
	if err != nil {
		return nil, err
	}
	// The library takes the first certificate for the leaf; exports that
	// put the CA first are common, so the key decides, as for PEM.
	return withLeaf(append([]*x509.Certificate{leaf}, chain...), signer)
}

func readPEM(data []byte) (*bundle, error) {
	var (
		certs []*x509.Certificate
		keys  []crypto.Signer
	)
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("apns: PEM block %d: certificate cannot be parsed: %w", n, err)
			}
			certs = append(certs, cert)
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
			// Legacy OpenSSL encryption marks the block with a Proc-Type header.
			if _, encrypted := block.Headers["Proc-Type"]; encrypted {
				return nil, ErrEncryptedKey
			}
			key, err := parsePEMKey(block)
			if err != nil {
				return nil, fmt.Errorf("apns: PEM block %d: %w", n, err)
			}
			keys = append(keys, key)
		case "ENCRYPTED PRIVATE KEY":
			return nil, ErrEncryptedKey
		}
	}
	switch {
	case len(certs) == 0:
		return nil, ErrNoCertificate
	case len(keys) == 0:
		return nil, ErrNoPrivateKey
	case len(keys) > 1:
		return nil, fmt.Errorf("apns: found %d private keys; upload exactly one", len(keys))
	}
	return withLeaf(certs, keys[0])
}

// withLeaf bundles key with its certificate among certs, the leaf; the
// rest is its chain. ErrKeyMismatch when none is the key's.
func withLeaf(certs []*x509.Certificate, key crypto.Signer) (*bundle, error) {
	for i, cert := range certs {
		if publicKeysEqual(cert.PublicKey, key.Public()) {
			chain := append(append([]*x509.Certificate{}, certs[:i]...), certs[i+1:]...)
			return &bundle{leaf: cert, chain: chain, key: key}, nil
		}
	}
	return nil, ErrKeyMismatch
}

// parsePEMKey decodes one key block. Parser errors are dropped on purpose: the
// message must not risk quoting key material.
func parsePEMKey(block *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s cannot be parsed", strings.ToLower(block.Type))
	}
	return asSigner(key)
}

func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case nil:
		return nil, ErrNoPrivateKey
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func (b *bundle) validate() (*PushCertificate, error) {
	if b.leaf == nil {
		return nil, ErrNoCertificate
	}
	if !publicKeysEqual(b.leaf.PublicKey, b.key.Public()) {
		return nil, ErrKeyMismatch
	}
	topic, err := topicOf(b.leaf)
	if err != nil {
		return nil, err
	}
	raw := [][]byte{b.leaf.Raw}
	for _, c := range b.chain {
		raw = append(raw, c.Raw)
	}
	return &PushCertificate{
		Topic:      topic,
		CommonName: b.leaf.Subject.CommonName,
		Serial:     b.leaf.SerialNumber.Text(16),
		NotBefore:  b.leaf.NotBefore,
		NotAfter:   b.leaf.NotAfter,
		tls:        tls.Certificate{Certificate: raw, PrivateKey: b.key, Leaf: b.leaf},
	}, nil
}

// checkValidAt refuses a certificate outside its validity at now.
func (c *PushCertificate) checkValidAt(now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.Expired(now) {
		return fmt.Errorf("%w: expired on %s; renew it with Apple using the same Apple Account, then upload the renewed one",
			ErrExpired, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// Expired reports whether the certificate has expired at now.
func (c *PushCertificate) Expired(now time.Time) bool { return !now.Before(c.NotAfter) }

// topicOf returns the subject UID, which must be an MDM topic.
func topicOf(cert *x509.Certificate) (string, error) {
	for _, attr := range cert.Subject.Names {
		if !attr.Type.Equal(oidUserID) {
			continue
		}
		topic, ok := attr.Value.(string)
		if !ok {
			return "", fmt.Errorf("%w: subject UID is not a string", ErrNotPushTopic)
		}
		if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) {
			return "", fmt.Errorf("%w: topic %q does not start with %q", ErrNotPushTopic, topic, TopicPrefix)
		}
		return topic, nil
	}
	return "", fmt.Errorf("%w: subject has no UID (topic) attribute", ErrNotPushTopic)
}

// ExpiresWithin reports whether the certificate is expired or will be within d
// of now.
func (c *PushCertificate) ExpiresWithin(d time.Duration, now time.Time) bool {
	return !c.NotAfter.After(now.Add(d))
}

// CertStatus is the certificate's health, for metrics and the admin console.
type CertStatus struct {
	Topic    string
	NotAfter time.Time
	DaysLeft int  // whole days until NotAfter; negative once expired
	Warning  bool // expires within ExpiryWarningWindow (or already has)
	// Refused is APNs' last refusal of this certificate, nil while none
	// stands; Status leaves it to the caller, who keeps the refusals.
	Refused *Refusal
}

// Refusal is APNs refusing pushes made with a certificate (a 403, a 400
// BadTopic…, or a TLS alert; see Result.CertificateRefused). It stands until
// a push with the certificate is accepted or another certificate is uploaded.
type Refusal struct {
	Status int       // HTTP status; 0 for a refusal in the TLS handshake
	Reason string    // APNs reason, e.g. BadCertificate, or ReasonTLSCertificateRefused
	ID     string    // apns-id of the refused request, to quote to Apple
	Since  time.Time // the first refusal in a row
	At     time.Time // the latest one
}

// Health values, the worst first.
const (
	HealthExpired  = "expired"
	HealthRefused  = "refused"
	HealthExpiring = "expiring"
	HealthOK       = "ok"
)

// Health sums the status up in one word. Expiry comes first: an expired
// certificate is not even offered to APNs, so a refusal before it is moot.
func (s CertStatus) Health() string {
	switch {
	case s.DaysLeft < 0:
		return HealthExpired
	case s.Refused != nil:
		return HealthRefused
	case s.Warning:
		return HealthExpiring
	default:
		return HealthOK
	}
}

// Status reports the certificate's health at now.
func (c *PushCertificate) Status(now time.Time) CertStatus {
	left := c.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	if left < 0 && left%(24*time.Hour) != 0 {
		days-- // floor, so an expired certificate never shows 0 days left
	}
	return CertStatus{
		Topic:    c.Topic,
		NotAfter: c.NotAfter,
		DaysLeft: days,
		Warning:  c.ExpiresWithin(ExpiryWarningWindow, now),
	}
}
