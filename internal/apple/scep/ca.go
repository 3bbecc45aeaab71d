package scep

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

const (
	// caKeyBits: scepclient encrypts its requests to every certificate of
	// GetCACert, the CA's included, with RSA key transport, so the CA key
	// stays RSA, although only the RA decrypts (see decrypt).
	caKeyBits  = 3072
	caValidity = 10 * 365 * 24 * time.Hour
	caCNPrefix = "Steward Device CA "
	maxCNRunes = 64
)

// CA is one tenant's device certificate authority.
type CA struct {
	tenantID string
	cert     *x509.Certificate
	key      *rsa.PrivateKey
	// settings and sealer store the tenant's RAs (see ra.go).
	settings store.SettingStore
	sealer   secrets.Sealer
	raMu     sync.Mutex
	ras      map[int64]*raKeys // by generation
	issuer   *issuingCA        // signs device certificates (see issuer.go)
}

// TenantID names the tenant the CA belongs to.
func (ca *CA) TenantID() string { return ca.tenantID }

// Certificate returns the CA certificate (public).
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// ProfileSigner issues a P-256 certificate, valid for a day, for signing
// the tenant's enrolment profiles: the CA's RSA key then signs once a day
// instead of once per enrolment.
func (ca *CA) ProfileSigner(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(24 * time.Hour)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "Steward profile signing"},
		NotBefore: now.Add(-clockSkew), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, SubjectKeyId: keyIdentifier(&key.PublicKey), AuthorityKeyId: ca.cert.SubjectKeyId}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("scep: issuing the profile signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// storedCA is the Settings value of a CA, an issuing CA or an RA: the
// certificate in clear (it is public) and the PKCS#8 key sealed to the
// setting's key.
type storedCA struct {
	CertDER   []byte `json:"cert"`
	SealedKey []byte `json:"key"`
}

func caSettingKey(tenantID string) string { return "scep-ca:" + tenantID }

// ErrNoCA is returned by OpenCA for a tenant whose CA has not been created:
// nothing has been enrolled under it yet.
var ErrNoCA = errors.New("scep: the tenant has no CA yet")

// LoadOrCreateCA opens the tenant's CA, creating it on first use. Several
// nodes may race: PutIfAbsent lets one win and every node re-reads the
// winner's CA, so all of them issue under the same key. Only an admin's
// action (an enrolment profile) should create a CA; device requests use
// OpenCA, so that a request that is refused leaves nothing behind.
func LoadOrCreateCA(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer, tenantID, tenantName string, now time.Time) (*CA, error) {
	if tenantID == "" {
		return nil, errors.New("scep: tenant ID is required for a CA")
	}
	raw, err := loadOrCreate(ctx, settings, caSettingKey(tenantID), func() ([]byte, error) {
		return newCAValue(sealer, tenantID, tenantName, now)
	})
	if err != nil {
		return nil, fmt.Errorf("scep: loading CA of tenant %s: %w", tenantID, err)
	}
	return openCA(ctx, settings, sealer, tenantID, tenantName, raw)
}

// OpenCA opens the tenant's CA, or returns ErrNoCA when it has none.
func OpenCA(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer, tenantID, tenantName string) (*CA, error) {
	raw, err := settings.Get(ctx, caSettingKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoCA
	}
	if err != nil {
		return nil, fmt.Errorf("scep: loading CA of tenant %s: %w", tenantID, err)
	}
	return openCA(ctx, settings, sealer, tenantID, tenantName, raw)
}

// HasCA reports whether the tenant's CA has been created.
func HasCA(ctx context.Context, settings store.SettingStore, tenantID string) (bool, error) {
	_, err := settings.Get(ctx, caSettingKey(tenantID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func openCA(ctx context.Context, settings store.SettingStore, sealer secrets.Sealer, tenantID, tenantName string, raw []byte) (*CA, error) {
	key := caSettingKey(tenantID)
	cert, signer, err := openKeyPair(raw, sealer, key)
	if err != nil {
		return nil, fmt.Errorf("scep: opening CA of tenant %s: %w", tenantID, err)
	}
	caKey, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("scep: the CA key of tenant %s is not RSA", tenantID)
	}
	ca := &CA{tenantID: tenantID, cert: cert, key: caKey, settings: settings, sealer: sealer, ras: map[int64]*raKeys{}}
	if err := ca.loadOrCreateIssuer(ctx, tenantName); err != nil {
		return nil, fmt.Errorf("scep: tenant %s: %w", tenantID, err)
	}
	return ca, nil
}

// loadOrCreate returns the value stored at key, storing fresh's first when
// there is none. Several nodes may race: PutIfAbsent lets one win and the
// others read the winner's value, so all of them use the same keys.
func loadOrCreate(ctx context.Context, settings store.SettingStore, key string, fresh func() ([]byte, error)) ([]byte, error) {
	raw, err := settings.Get(ctx, key)
	if !errors.Is(err, store.ErrNotFound) {
		return raw, err
	}
	value, err := fresh()
	if err != nil {
		return nil, err
	}
	stored, err := settings.PutIfAbsent(ctx, key, value)
	if err != nil {
		return nil, fmt.Errorf("storing %s: %w", key, err)
	}
	if stored {
		return value, nil
	}
	return settings.Get(ctx, key)
}

func newCAValue(sealer secrets.Sealer, tenantID, tenantName string, now time.Time) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, caKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: caCommonName(tenantName)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// One CA below it: the issuing CA that signs device certificates
		// (issuer.go). CAs made before had path length zero and are kept;
		// Steward trusts their issuing CA directly (Roots), but a verifier
		// that chains a device through their tenant CA refuses it.
		MaxPathLen: 1,
		// KeyEncipherment: clients such as scepclient encrypt to every
		// certificate of GetCACert, this one included; only the RA decrypts.
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	value, err := certifyAndSeal(tmpl, tmpl, key, key, sealer, caSettingKey(tenantID))
	if err != nil {
		return nil, fmt.Errorf("self-signing the CA: %w", err)
	}
	return value, nil
}

// certifyAndSeal signs tmpl for key with parentKey under parent (tmpl itself
// when self-signed), filling in its serial and key identifier, and returns
// the Settings value: the certificate and the key sealed to settingKey.
func certifyAndSeal(tmpl, parent *x509.Certificate, key, parentKey crypto.Signer, sealer secrets.Sealer, settingKey string) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber, tmpl.SubjectKeyId = serial, keyIdentifier(key.Public())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	sealed, err := sealer.Seal(pkcs8, []byte(settingKey))
	if err != nil {
		return nil, fmt.Errorf("sealing the key: %w", err)
	}
	return json.Marshal(storedCA{CertDER: der, SealedKey: sealed})
}

// openKeyPair decodes a stored certificate and unseals its key, sealed to
// the setting's key.
func openKeyPair(raw []byte, sealer secrets.Sealer, settingKey string) (*x509.Certificate, crypto.Signer, error) {
	var s storedCA
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil, fmt.Errorf("decoding stored certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(s.CertDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate: %w", err)
	}
	pkcs8, err := sealer.Open(s.SealedKey, []byte(settingKey))
	if err != nil {
		return nil, nil, fmt.Errorf("unsealing key (is this node given the same master key as the others?): %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing key: %w", err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("stored key cannot sign")
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("stored key does not match its certificate")
	}
	return cert, key, nil
}

func caCommonName(tenantName string) string { return truncateCN(caCNPrefix + tenantName) }

// truncateCN keeps a CN within the 64 characters X.520 allows.
func truncateCN(cn string) string {
	for utf8.RuneCountInString(cn) > maxCNRunes {
		_, size := utf8.DecodeLastRuneInString(cn)
		cn = cn[:len(cn)-size]
	}
	return cn
}

// randomSerial returns a random 128-bit serial (17 DER octets at most,
// within RFC 5280's 20).
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	serial := new(big.Int).SetBytes(b)
	if serial.Sign() == 0 { // RFC 5280 wants a positive serial
		serial.SetInt64(1)
	}
	return serial, nil
}

// keyIdentifier is RFC 7093 method 1: the leftmost 160 bits of the SHA-256
// of the subjectPublicKey bits.
func keyIdentifier(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20]
}
