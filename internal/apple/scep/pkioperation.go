package scep

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

// badMessageError means the bytes are not a SCEP request we can answer
// with a CertRep at all (no verifiable signature or transaction): HTTP 400.
type badMessageError struct{ reason string }

func (e *badMessageError) Error() string { return e.reason }

// pkiOperation answers one PKCSReq or RenewalReq with a signed CertRep:
// SUCCESS with the certificate, or FAILURE with the reason's failInfo.
// Other signed requests get a FAILURE too.
func (s *Server) pkiOperation(ctx context.Context, ca *CA, der []byte) ([]byte, error) {
	msg, err := scep.ParsePKIMessage(der)
	if err != nil {
		var ok bool
		if msg, ok = parseUnsupported(der); !ok {
			return nil, &badMessageError{reason: "not a signed SCEP PKCSReq or RenewalReq"}
		}
	}
	current, err := ca.currentRA(ctx, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	reply, ra, err := s.handleRequest(ctx, ca, current, msg)
	var refused *RefusalError
	if errors.As(err, &refused) {
		s.cfg.Logger.InfoContext(ctx, "scep: request refused", "tenant", ca.tenantID, "code", refused.Code, "reason", refused.Reason)
		if s.cfg.OnRefused != nil {
			s.cfg.OnRefused(ctx, Refused{TenantID: ca.tenantID, EnrolmentID: refused.enrolmentID, SourceIP: clientIP(ctx),
				Code: refused.Code, Reason: refused.Reason})
		}
		return failureReply(msg, ra, refused.FailInfo)
	}
	return reply, err
}

// handleRequest returns the CertRep SUCCESS for msg, or why it is refused,
// and the RA that signs the CertRep: the one the request was encrypted to,
// whose certificate the client has to verify the reply with, or current
// when the request is refused before it is decrypted.
func (s *Server) handleRequest(ctx context.Context, ca *CA, current *raKeys, msg *scep.PKIMessage) ([]byte, *raKeys, error) {
	if msg.MessageType != scep.PKCSReq && msg.MessageType != scep.RenewalReq {
		return nil, current, refusal(failBadRequest, "unsupported_message", "only PKCSReq and RenewalReq are supported")
	}
	signer, err := replyRecipient(msg)
	if err != nil {
		return nil, current, err
	}
	ra, err := s.decrypt(ctx, ca, current, msg)
	if err != nil {
		return nil, current, err
	}
	reply, err := s.enrolOrRenew(ctx, ca, ra, msg, signer)
	return reply, ra, err
}

// enrolOrRenew answers a decrypted request, msg, signed by signer, with a
// CertRep SUCCESS signed by ra, or says why it is refused.
func (s *Server) enrolOrRenew(ctx context.Context, ca *CA, ra *raKeys, msg *scep.PKIMessage, signer *x509.Certificate) ([]byte, error) {
	csr := msg.CSR
	if err := checkCSR(csr); err != nil {
		return nil, err
	}
	success := func(cert *x509.Certificate) ([]byte, error) {
		return successReply(msg, signer, ra, cert, ca.issuer.cert)
	}
	if msg.MessageType == scep.RenewalReq {
		return s.renew(ctx, ca, msg, signer, success)
	}
	now := s.cfg.Now()
	// A read first: a request without a usable challenge costs no
	// signature and no write, and may be a resend of one answered before.
	read := s.cfg.Store.Read().Settings()
	if _, err := readChallenge(ctx, read, ca.tenantID, msg.ChallengePassword, now); errors.Is(err, errChallenge) {
		cert, err := resentCertificate(ctx, read, ca.tenantID, msg, now)
		if err != nil {
			return nil, err
		}
		if cert == nil {
			return nil, errChallenge
		}
		return success(cert)
	} else if err != nil {
		return nil, err
	}
	reply, err := s.issue(ctx, ca, csr, success, func(q store.Queries, cert *x509.Certificate) (Issuance, error) {
		granted, err := consumeChallenge(ctx, q.Settings(), ca.tenantID, msg.ChallengePassword, now)
		if err != nil {
			return Issuance{}, err
		}
		issued := Issuance{TenantID: ca.tenantID, EnrolmentID: granted.EnrolmentID, Certificate: cert, Renewal: granted.Renewal,
			Grant: granted.Grant}
		return issued, rememberIssued(ctx, q.Settings(), ca.tenantID, msg, cert, now)
	})
	if errors.Is(err, errChallenge) {
		// Spent since the read above: by this request's own first sending,
		// if the client resent it before that one was answered.
		cert, rerr := resentCertificate(ctx, read, ca.tenantID, msg, now)
		if rerr != nil {
			return nil, rerr
		}
		if cert != nil {
			return success(cert)
		}
	}
	return reply, err
}

// decrypt opens the request's envelope with the current RA or a
// neighbouring generation's (see ra.go) and returns the RA that opened it.
//
// The CA key decrypts nothing. Every client Steward serves encrypts to the
// RA: Apple devices pick it out of GetCACert, and scepclient encrypts to
// every certificate there, the RA's included. scepclient pinned to the CA's
// fingerprint encrypts to the CA alone, but then verifies the reply against
// the CA alone too and refuses the RA's signature. Decrypting with the CA
// key would only expose the tenant's ten-year signing key to a PKCS#1 v1.5
// padding (Bleichenbacher) oracle.
func (s *Server) decrypt(ctx context.Context, ca *CA, current *raKeys, msg *scep.PKIMessage) (*raKeys, error) {
	if msg.DecryptPKIEnvelope(current.cert, current.key) == nil {
		return current, nil
	}
	gen := raGeneration(s.cfg.Now())
	for _, neighbour := range []int64{gen - 1, gen + 1} {
		ra, err := ca.storedRA(ctx, neighbour)
		if err != nil {
			return nil, fmt.Errorf("scep: loading the RA of generation %d: %w", neighbour, err)
		}
		if ra != nil && msg.DecryptPKIEnvelope(ra.cert, ra.key) == nil {
			return ra, nil
		}
	}
	return nil, refusal(failBadMessageCheck, "not_encrypted_to_ra", "request is not encrypted to this tenant's RA (the first certificate of GetCACert), or holds no valid CSR")
}

// renew issues a new certificate for a device that signs its request, msg,
// with old, the current certificate this CA gave it; no challenge is
// needed. A resend of a renewal already answered gets the certificate
// issued then.
func (s *Server) renew(ctx context.Context, ca *CA, msg *scep.PKIMessage, old *x509.Certificate,
	success func(*x509.Certificate) ([]byte, error)) ([]byte, error) {
	csr := msg.CSR
	if !ca.IssuedByTenant(old) {
		return nil, refusal(failBadMessageCheck, "renewal_signer_unknown", "renewal is not signed by a certificate this tenant's CA issued")
	}
	now := s.cfg.Now()
	if now.Before(old.NotBefore) || now.After(old.NotAfter) {
		return nil, refusal(failBadMessageCheck, "renewal_signer_expired", "the certificate signing the renewal is not valid now")
	}
	if !slices.Contains(old.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, refusal(failBadMessageCheck, "renewal_signer_not_identity", "the certificate signing the renewal is not a device identity")
	}
	// The common name is all of a subject that is issued (issue.go).
	if old.Subject.CommonName != csr.Subject.CommonName {
		return nil, refusal(failBadRequest, "renewal_subject_changed", "a renewal must keep the subject of the certificate it renews")
	}
	read := s.cfg.Store.Read().Settings()
	if _, err := read.Get(ctx, issuedSettingKey(ca.tenantID, old.SerialNumber)); errors.Is(err, store.ErrNotFound) {
		// The first sending of a renewal spent old's claim: a resend of it
		// is answered with the certificate issued then.
		cert, err := renewedCertificate(ctx, read, ca.tenantID, msg, old, now)
		if err != nil {
			return nil, fmt.Errorf("scep: reading renewed certificate: %w", err)
		}
		if cert == nil {
			return nil, errNotCurrent // checked before signing; claimed below
		}
		return success(cert)
	} else if err != nil {
		return nil, fmt.Errorf("scep: reading issued certificate: %w", err)
	}
	reply, err := s.issue(ctx, ca, csr, success, func(q store.Queries, cert *x509.Certificate) (Issuance, error) {
		enrolmentID, err := claimRenewal(ctx, q.Settings(), ca.tenantID, old.SerialNumber)
		if err != nil {
			return Issuance{}, err
		}
		issued := Issuance{TenantID: ca.tenantID, EnrolmentID: enrolmentID, Certificate: cert, Renewal: true, Renews: old}
		return issued, rememberRenewed(ctx, q.Settings(), ca.tenantID, msg, old, cert, now)
	})
	if errors.Is(err, errNotCurrent) {
		// Claimed since the read above: by this renewal's own first
		// sending, if the client resent it before that one was answered.
		cert, rerr := renewedCertificate(ctx, read, ca.tenantID, msg, old, now)
		if rerr != nil {
			return nil, fmt.Errorf("scep: reading renewed certificate: %w", rerr)
		}
		if cert != nil {
			return success(cert)
		}
	}
	return reply, err
}

// issue signs csr and its CertRep, then in one transaction redeems what
// entitles the request to it (grant: a challenge, or the certificate being
// renewed), lets OnIssued bind it and records it as current. The reply is
// made before the transaction, so that nothing can fail after the commit
// but sending it; any error, a refusal included, changes nothing: the
// challenge or the old certificate can be used again.
func (s *Server) issue(ctx context.Context, ca *CA, csr *x509.CertificateRequest, success func(*x509.Certificate) ([]byte, error),
	grant func(store.Queries, *x509.Certificate) (Issuance, error)) ([]byte, error) {
	cert, err := ca.issue(csr, s.cfg.Now(), s.cfg.Validity)
	if err != nil {
		return nil, err
	}
	reply, err := success(cert)
	if err != nil {
		return nil, err
	}
	var issued Issuance
	err = s.cfg.Store.Tx(ctx, func(q store.Queries) error {
		if issued, err = grant(q, cert); err != nil {
			return err
		}
		issued.SourceIP = clientIP(ctx)
		if err := s.cfg.OnIssued(ctx, q, issued); err != nil {
			if refused, ok := errors.AsType[*RefusalError](err); ok {
				err = refused.forEnrolment(issued.EnrolmentID)
			}
			return fmt.Errorf("scep: binding certificate to enrolment %s: %w", issued.EnrolmentID, err)
		}
		return recordIssued(ctx, q.Settings(), ca.tenantID, cert, issued.EnrolmentID)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "scep: certificate issued", "tenant", ca.tenantID, "enrolment", issued.EnrolmentID, "renewal", issued.Renewal)
	return reply, nil
}
