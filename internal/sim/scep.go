package sim

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"
)

// scep obtains the identity certificate as a device does.
func (d *Device) scep(ctx context.Context, p profileInfo) error {
	recipient, ca, caCerts, err := d.getCACert(ctx, p.scepURL)
	if err != nil {
		return fmt.Errorf("GetCACert: %w", err)
	}
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cmp.Or(d.CommonName, p.cn)}}, ChallengePassword: p.challenge,
	}, d.key)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}
	self, err := scepSigner(d.envelopeKey)
	if err != nil {
		return err
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{MessageType: scep.PKCSReq, Recipients: []*x509.Certificate{recipient},
		SignerKey: d.envelopeKey, SignerCert: self})
	if err != nil {
		return err
	}
	out, err := d.do(ctx, "POST", p.scepURL+"?operation=PKIOperation", "application/x-pki-message", msg.Raw, nil)
	if err != nil {
		return err
	}
	// The profile must come from the same CA, or from a signer the device
	// trusts (ProfileRoots): nobody else may hand it a profile for this
	// server.
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err = p.signer.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil && d.ProfileRoots != nil {
		_, err = p.signer.Verify(x509.VerifyOptions{Roots: d.ProfileRoots, Intermediates: p.intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	}
	if err != nil {
		return fmt.Errorf("the profile was signed neither under the tenant's CA nor by a signer the device trusts: %w", err)
	}
	rep, err := scep.ParsePKIMessage(out, scep.WithCACerts(caCerts))
	if err != nil {
		return err
	}
	if rep.PKIStatus != scep.SUCCESS {
		return &RefusedError{FailInfo: string(rep.FailInfo)}
	}
	if err := rep.DecryptPKIEnvelope(self, d.envelopeKey); err != nil {
		return err
	}
	d.cert = rep.CertRepMessage.Certificate
	return nil
}

// getCACert reads a GetCACert answer as Apple devices do: one CA
// certificate, or a certs-only CMS of RA and CA certificates, in which case
// requests go to the RA (the certificate for key encipherment that is not
// a CA).
func (d *Device) getCACert(ctx context.Context, scepURL string) (recipient, ca *x509.Certificate, all []*x509.Certificate, err error) {
	body, err := d.do(ctx, "GET", scepURL+"?operation=GetCACert", "", nil, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if all, err = x509.ParseCertificates(body); err != nil {
		if all, err = scep.CACerts(body); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, c := range all {
		switch {
		case c.IsCA:
			ca = c
		case c.KeyUsage&x509.KeyUsageKeyEncipherment != 0:
			recipient = c
		}
	}
	if ca == nil {
		return nil, nil, nil, errors.New("the answer holds no CA certificate")
	}
	if recipient == nil {
		recipient = ca
	} else if err := recipient.CheckSignatureFrom(ca); err != nil {
		return nil, nil, nil, fmt.Errorf("the RA certificate was not issued by the CA: %w", err)
	}
	return recipient, ca, all, nil
}

// signers holds one self-signed SCEP signer certificate per envelope key.
// A device makes a new one for every request; simulated devices share keys
// (see NewWithKey), and making it would otherwise be a third of their RSA
// work.
var signers sync.Map // *rsa.PrivateKey -> *x509.Certificate

func scepSigner(key *rsa.PrivateKey) (*x509.Certificate, error) {
	if c, ok := signers.Load(key); ok && time.Until(c.(*x509.Certificate).NotAfter) > 10*time.Minute {
		return c.(*x509.Certificate), nil
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SCEP signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	signers.Store(key, c)
	return c, nil
}

// RenewIdentity renews the identity certificate with a SCEP RenewalReq
// signed by the current one (RFC 8894 section 3.3.1.2), as a standards
// client does before expiry. Apple devices do not renew this way; they get
// a re-issued enrolment profile instead (see reinstallEnrolment).
func (d *Device) RenewIdentity(ctx context.Context) error {
	rsaKey, ok := d.key.(*rsa.PrivateKey)
	if !ok || d.cert == nil {
		return errors.New("renewal needs an RSA identity certificate")
	}
	recipient, _, caCerts, err := d.getCACert(ctx, d.profile.scepURL)
	if err != nil {
		return fmt.Errorf("GetCACert: %w", err)
	}
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: d.cert.Subject}}, rsaKey)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}
	msg, err := scep.NewCSRRequest(csr, &scep.PKIMessage{MessageType: scep.RenewalReq, Recipients: []*x509.Certificate{recipient},
		SignerKey: rsaKey, SignerCert: d.cert})
	if err != nil {
		return err
	}
	out, err := d.do(ctx, "POST", d.profile.scepURL+"?operation=PKIOperation", "application/x-pki-message", msg.Raw, nil)
	if err != nil {
		return err
	}
	rep, err := scep.ParsePKIMessage(out, scep.WithCACerts(caCerts))
	if err != nil {
		return err
	}
	if rep.PKIStatus != scep.SUCCESS {
		return &RefusedError{FailInfo: string(rep.FailInfo)}
	}
	if err := rep.DecryptPKIEnvelope(d.cert, rsaKey); err != nil {
		return err
	}
	d.cert = rep.CertRepMessage.Certificate
	return nil
}

// RefusedError is a SCEP CertRep FAILURE; FailInfo is the RFC 8894 code
// ("2" is badRequest).
type RefusedError struct{ FailInfo string }

func (e *RefusedError) Error() string {
	return "the CA refused the request (failInfo " + e.FailInfo + ")"
}
