package scep

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// A registration authority (RA) certificate fronts each tenant CA, as NDES
// and step-ca do: devices encrypt their requests to it and it signs the
// CertReps, while the CA key signs only certificates. An RSA-2048 RA does
// those two private-key operations about three times faster than the CA's
// RSA-3072 key.
//
// RAs come in generations of raPeriod, counted from the Unix epoch, so that
// every node derives the current one from its clock and creates it with
// PutIfAbsent: nodes agree without a rotation protocol. Generation g's
// certificate is valid until generation g+2 begins, and requests encrypted
// to a neighbouring generation are still decrypted: the previous one for
// devices that fetched GetCACert just before the turn, the next one for a
// node whose clock turned a little before this node's.
const (
	raKeyBits = 2048
	raPeriod  = 90 * 24 * time.Hour
	raCN      = "Steward SCEP RA"
)

var oidCertificateRequestAgent = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 1}

// raKeys is one generation's RA certificate and key.
type raKeys struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func raGeneration(t time.Time) int64 { return t.Unix() / int64(raPeriod/time.Second) }

func raGenerationStart(gen int64) time.Time {
	return time.Unix(gen*int64(raPeriod/time.Second), 0).UTC()
}

func raSettingPrefix(tenantID string) string { return "scep-ra:" + tenantID + ":" }

func raSettingKey(tenantID string, gen int64) string {
	return raSettingPrefix(tenantID) + strconv.FormatInt(gen, 10)
}

// currentRA returns the RA of now's generation, creating it on first use.
func (ca *CA) currentRA(ctx context.Context, now time.Time) (*raKeys, error) {
	ra, err := ca.ra(ctx, raGeneration(now), true)
	if err != nil {
		return nil, fmt.Errorf("scep: the RA of tenant %s: %w", ca.tenantID, err)
	}
	return ra, nil
}

// storedRA returns generation gen's RA if some node created it, else nil.
// It never creates one: it serves requests encrypted to a neighbouring
// generation's RA.
func (ca *CA) storedRA(ctx context.Context, gen int64) (*raKeys, error) {
	return ca.ra(ctx, gen, false)
}

// ra returns generation gen's RA from memory or the store. create makes it
// when no node has (the current generation); then the generation before the
// previous, which no request needs any more, is dropped from both.
func (ca *CA) ra(ctx context.Context, gen int64, create bool) (*raKeys, error) {
	ca.raMu.Lock()
	defer ca.raMu.Unlock()
	if ra, ok := ca.ras[gen]; ok {
		return ra, nil
	}
	key := raSettingKey(ca.tenantID, gen)
	var raw []byte
	var err error
	if create {
		raw, err = loadOrCreate(ctx, ca.settings, key, func() ([]byte, error) { return ca.newRAValue(gen) })
	} else if raw, err = ca.settings.Get(ctx, key); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ra, err := ca.openRA(raw, gen)
	if err != nil {
		return nil, err
	}
	if create {
		if err := ca.settings.Delete(ctx, raSettingKey(ca.tenantID, gen-2)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("deleting an expired RA: %w", err)
		}
		for g := range ca.ras {
			if g < gen-1 {
				delete(ca.ras, g)
			}
		}
	}
	ca.ras[gen] = ra
	return ra, nil
}

func (ca *CA) newRAValue(gen int64) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, raKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generating RA key: %w", err)
	}
	notAfter := raGenerationStart(gen + 2)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: raCN, Organization: ca.cert.Subject.Organization},
		// From the CA's own start, so that no skew between the clocks of
		// nodes and devices puts a CertRep's signing time before it.
		NotBefore:             ca.cert.NotBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		// DigitalSignature signs CertReps; KeyEncipherment is how devices
		// tell the RA from the CA in a GetCACert answer.
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		// Certificate Request Agent, as NDES marks its RA: without an
		// extended key usage, the RA would pass for a device identity.
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidCertificateRequestAgent},
		AuthorityKeyId:     ca.cert.SubjectKeyId,
	}
	value, err := certifyAndSeal(tmpl, ca.cert, key, ca.key, ca.sealer, raSettingKey(ca.tenantID, gen))
	if err != nil {
		return nil, fmt.Errorf("issuing the RA: %w", err)
	}
	return value, nil
}

func (ca *CA) openRA(raw []byte, gen int64) (*raKeys, error) {
	cert, signer, err := openKeyPair(raw, ca.sealer, raSettingKey(ca.tenantID, gen))
	if err != nil {
		return nil, err
	}
	key, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the stored RA key is not RSA")
	}
	if err := cert.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("the stored RA certificate was not issued by the tenant CA: %w", err)
	}
	return &raKeys{cert: cert, key: key}, nil
}
