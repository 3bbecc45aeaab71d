package mdmproto

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smallstep/pkcs7"
)

// VerifyMdmSignature checks the Mdm-Signature header a device sends when its
// MDM payload has SignMessage set: base64 of a detached CMS SignedData over
// the request body. It verifies the signature over exactly body, then that
// the signer chains to roots (intermediates may come from the CMS) for client
// authentication at now, and returns the signer certificate.
func VerifyMdmSignature(header string, body []byte, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	return VerifyMdmSignatureCached(header, body, roots, now, nil)
}

// VerifyMdmSignatureCached is VerifyMdmSignature that skips the chain walk
// for a signer cache has seen verified against the same roots (the body's
// signature is always checked).
func VerifyMdmSignatureCached(header string, body []byte, roots *x509.CertPool, now time.Time, cache *ChainCache) (*x509.Certificate, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, ErrSignatureMissing
	}
	if len(header) > MaxSignatureHeaderBytes {
		return nil, fmt.Errorf("%w: header over %d bytes", ErrSignatureMalformed, MaxSignatureHeaderBytes)
	}
	if roots == nil {
		return nil, fmt.Errorf("%w: no trusted roots configured", ErrSignerUntrusted)
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrSignatureMalformed)
	}
	p7, err := parseCMS(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a CMS SignedData: %v", ErrSignatureMalformed, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: want exactly one signer, got %d", ErrSignatureMalformed, len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, fmt.Errorf("%w: signer certificate not included", ErrSignatureMalformed)
	}
	// Detached: the signed content is the body we received, whatever the CMS
	// may carry.
	p7.Content = body
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignatureInvalid, err)
	}
	if cache != nil && cache.valid(signer, now) {
		return signer, nil
	}
	intermediates := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if c != signer {
			intermediates.AddCert(c)
		}
	}
	_, err = signer.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignerUntrusted, err)
	}
	if cache != nil {
		cache.remember(signer, now)
	}
	return signer, nil
}

// ChainCache remembers signer certificates whose chain to one set of roots
// was verified, so a device's every request costs one signature check over
// its body, not a chain walk as well. Use one cache per set of roots.
type ChainCache struct {
	m      sync.Map
	stored atomic.Uint64
}

// chainCacheSweepEvery: every so many certificates remembered, those
// expired are forgotten. Devices renew their identities, so the cache
// would otherwise hold every certificate the tenant ever issued.
const chainCacheSweepEvery = 4096

func (c *ChainCache) valid(cert *x509.Certificate, now time.Time) bool {
	v, ok := c.m.Load(sha256.Sum256(cert.Raw))
	return ok && now.Before(v.(time.Time)) && !now.Before(cert.NotBefore)
}

func (c *ChainCache) remember(cert *x509.Certificate, now time.Time) {
	c.m.Store(sha256.Sum256(cert.Raw), cert.NotAfter)
	if c.stored.Add(1)%chainCacheSweepEvery == 0 {
		c.m.Range(func(k, notAfter any) bool {
			if !now.Before(notAfter.(time.Time)) {
				c.m.Delete(k)
			}
			return true
		})
	}
}

// parseCMS parses DER that must be a SignedData, turning a parser panic on
// hostile input into an error.
func parseCMS(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, errors.New("unparseable structure")
		}
	}()
	p7, err = pkcs7.Parse(der)
	if err != nil {
		return nil, err
	}
	if p7 == nil {
		return nil, errors.New("empty structure")
	}
	return p7, nil
}

// SignMdmMessage produces the Mdm-Signature header value for body, as a
// device (or the simulator) does: base64 of a detached CMS SignedData with
// SHA-256, the signer certificate included.
func SignMdmMessage(body []byte, cert *x509.Certificate, key crypto.Signer) (string, error) {
	der, err := signCMS(body, cert, key, nil, true)
	if err != nil {
		return "", fmt.Errorf("sign mdm message: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// signCMS builds a CMS SignedData over content with SHA-256, including cert
// and chain; detached leaves the content out.
func signCMS(content []byte, cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate, detached bool) ([]byte, error) {
	if cert == nil || key == nil {
		return nil, errors.New("signer certificate and key are required")
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("start signed data: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(cert, key, chain, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("add signer: %w", err)
	}
	if detached {
		sd.Detach()
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("finish signed data: %w", err)
	}
	return der, nil
}
