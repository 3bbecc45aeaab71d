package scep

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"
)

// CertReps are built here rather than by smallstep/scep's Success and Fail:
// Success encrypts the reply to every certificate the request carries and
// sends back the issued certificate alone, and both echo the client's nonce
// as the server's own.

// SCEP's signed attributes (RFC 8894 section 3.2.1); smallstep/scep keeps
// its own unexported.
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// replyRecipient returns the certificate the request was signed with, to
// which the CertRep is encrypted. Envelopes here use RSA key transport
// (pkcs7 has no ECDH key agreement), so a request signed with another key
// is refused before anything is issued or spent.
func replyRecipient(msg *scep.PKIMessage) (*x509.Certificate, error) {
	p7, err := pkcs7.Parse(msg.Raw)
	if err != nil {
		return nil, refusal(failBadMessageCheck, "signature_unreadable", "request signature cannot be parsed")
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, refusal(failBadMessageCheck, "signature_unreadable", "request must have exactly one signer")
	}
	if _, ok := signer.PublicKey.(*rsa.PublicKey); !ok {
		return nil, refusal(failBadAlg, "signer_not_rsa", "the reply is encrypted to the certificate that signs the request, which must hold an RSA key")
	}
	return signer, nil
}

// successReply is a CertRep SUCCESS: a certs-only CMS of the issued
// certificate and then the issuing CA that signed it (RFC 8894 section
// 3.3.2), so that the device has the chain up to the CA of GetCACert;
// encrypted to recipient and signed by the RA.
func successReply(req *scep.PKIMessage, recipient *x509.Certificate, ra *raKeys, cert, issuer *x509.Certificate) ([]byte, error) {
	certsOnly, err := scep.DegenerateCertificates([]*x509.Certificate{cert, issuer})
	if err != nil {
		return nil, err
	}
	enveloped, err := pkcs7.Encrypt(certsOnly, []*x509.Certificate{recipient})
	if err != nil {
		return nil, fmt.Errorf("scep: encrypting the certificate to the requester: %w", err)
	}
	sd, err := pkcs7.NewSignedData(enveloped)
	if err != nil {
		return nil, err
	}
	// Some clients take the first certificate of the signed data for the
	// issued one, as smallstep/scep sends it.
	sd.AddCertificate(cert)
	return signReply(sd, req, ra, pkcs7.Attribute{Type: oidPKIStatus, Value: scep.SUCCESS})
}

// failureReply is a CertRep FAILURE with info, signed by the RA.
func failureReply(req *scep.PKIMessage, ra *raKeys, info scep.FailInfo) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(nil)
	if err != nil {
		return nil, err
	}
	return signReply(sd, req, ra, pkcs7.Attribute{Type: oidPKIStatus, Value: scep.FAILURE}, pkcs7.Attribute{Type: oidFailInfo, Value: info})
}

// signReply signs a CertRep for req with status, a fresh sender nonce and
// req's nonce as the recipient nonce (RFC 8894 section 3.2.1.5).
func signReply(sd *pkcs7.SignedData, req *scep.PKIMessage, ra *raKeys, status ...pkcs7.Attribute) ([]byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	attrs := append([]pkcs7.Attribute{
		{Type: oidTransactionID, Value: req.TransactionID},
		{Type: oidMessageType, Value: scep.CertRep},
		{Type: oidSenderNonce, Value: scep.SenderNonce(nonce)},
		{Type: oidRecipientNonce, Value: scep.RecipientNonce(req.SenderNonce)},
	}, status...)
	if err := sd.AddSigner(ra.cert, ra.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, fmt.Errorf("scep: signing the reply: %w", err)
	}
	return sd.Finish()
}

// parseUnsupported reads a signed CertPoll, GetCert or GetCRL, which
// smallstep/scep does not parse, far enough to answer it with a CertRep
// FAILURE, as RFC 8894 asks, rather than with HTTP 400.
func parseUnsupported(der []byte) (*scep.PKIMessage, bool) {
	p7, err := pkcs7.Parse(der)
	if err != nil || p7.Verify() != nil {
		return nil, false
	}
	var msgType scep.MessageType
	if p7.UnmarshalSignedAttribute(oidMessageType, &msgType) != nil {
		return nil, false
	}
	if msgType != scep.CertPoll && msgType != scep.GetCert && msgType != scep.GetCRL {
		return nil, false
	}
	var tid scep.TransactionID
	var nonce scep.SenderNonce
	if p7.UnmarshalSignedAttribute(oidTransactionID, &tid) != nil || p7.UnmarshalSignedAttribute(oidSenderNonce, &nonce) != nil || len(nonce) == 0 {
		return nil, false
	}
	return &scep.PKIMessage{TransactionID: tid, MessageType: msgType, SenderNonce: nonce, Raw: der}, true
}
