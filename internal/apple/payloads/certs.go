package payloads

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Key usages for SCEP.KeyUsage, mapped to Apple's "Key Usage" bits.
var scepKeyUsages = map[string]int{"signing": 1, "encryption": 4, "both": 5}

// SCEP configures com.apple.security.scep: the device generates a key and
// asks the CA for a certificate. The private key is marked non-extractable.
type SCEP struct {
	URL       string             `json:"url"`            // https, or http with CAFingerprint
	Name      string             `json:"name,omitempty"` // CA instance name
	Subject   []SubjectAttribute `json:"subject,omitempty"`
	Challenge Secret             `json:"challenge,omitzero"`
	KeySize   int                `json:"key_size,omitempty"`  // 2048 (default) or 4096
	KeyUsage  string             `json:"key_usage,omitempty"` // "signing", "encryption" or "both" (default)
	// CAFingerprint pins the CA certificate the device gets from the
	// server (GetCACert): its SHA-256 or SHA-1 fingerprint in hex, bytes
	// optionally separated by colons (CAFingerprint,
	// com.apple.security.scep.yaml). Over http it is the only thing that
	// tells the device the CA is the real one: the device encrypts its
	// request, challenge included, to that CA.
	CAFingerprint string `json:"ca_fingerprint,omitempty"`
}

// SubjectAttribute is one RDN of the certificate subject, such as CN or O.
type SubjectAttribute struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

var subjectTypes = map[string]bool{"CN": true, "O": true, "OU": true, "C": true, "ST": true, "L": true, "DC": true, "UID": true, "E": true}

// subjectOIDs spell out the types Apple's SCEP payload has no shortcut for:
// it knows only C, L, ST, O, OU and CN by name, and others by dotted OID.
var subjectOIDs = map[string]string{
	"E":   "1.2.840.113549.1.9.1",       // emailAddress
	"UID": "0.9.2342.19200300.100.1.1",  // userId
	"DC":  "0.9.2342.19200300.100.1.25", // domainComponent
}

func (s *SCEP) validate(_ *validator, path string) error {
	if err := checkURL(path+".url", s.URL, "https", "http"); err != nil {
		return err
	}
	if _, ok := s.caFingerprint(); !ok {
		return fieldErr(path+".ca_fingerprint", "must be the CA certificate's SHA-256 (64 hex digits) or SHA-1 (40 hex digits) "+
			"fingerprint, bytes optionally separated by colons")
	}
	if u, _ := url.Parse(s.URL); u.Scheme == "http" && s.CAFingerprint == "" {
		return fieldErr(path+".url", "uses http, where anyone on the way can swap the CA certificate and read the challenge: "+
			"use https, or give ca_fingerprint")
	}
	if err := checkText(path+".name", s.Name, maxNameLength, false); err != nil {
		return err
	}
	if len(s.Subject) > 20 {
		return fieldErr(path+".subject", "has more than 20 attributes")
	}
	for _, a := range s.Subject {
		if !subjectTypes[a.Type] {
			return fieldErr(path+".subject", "attribute types must be CN, O, OU, C, ST, L, DC, UID or E")
		}
		if err := checkText(path+".subject", a.Value, 256, true); err != nil {
			return err
		}
	}
	if s.KeySize != 0 && s.KeySize != 2048 && s.KeySize != 4096 {
		return fieldErr(path+".key_size", "must be 2048 or 4096; 1024-bit keys are too weak")
	}
	if _, ok := scepKeyUsages[s.KeyUsage]; s.KeyUsage != "" && !ok {
		return fieldErr(path+".key_usage", `must be "signing", "encryption" or "both"`)
	}
	return nil
}

func (s *SCEP) content(*builder) (map[string]any, error) {
	inner := map[string]any{
		"URL":              s.URL,
		"Keysize":          2048,
		"Key Type":         "RSA",
		"Key Usage":        5,
		"KeyIsExtractable": false,
	}
	if s.KeySize != 0 {
		inner["Keysize"] = s.KeySize
	}
	if s.KeyUsage != "" {
		inner["Key Usage"] = scepKeyUsages[s.KeyUsage]
	}
	if s.Name != "" {
		inner["Name"] = s.Name
	}
	if len(s.Subject) > 0 {
		// Apple's shape: an array of RDNs, each an array of [type, value] pairs.
		subject := make([]any, 0, len(s.Subject))
		for _, a := range s.Subject {
			typ := a.Type
			if oid, ok := subjectOIDs[typ]; ok {
				typ = oid
			}
			subject = append(subject, []any{[]string{typ, a.Value}})
		}
		inner["Subject"] = subject
	}
	if c := s.Challenge.Reveal(); len(c) > 0 {
		inner["Challenge"] = string(c)
	}
	if fingerprint, _ := s.caFingerprint(); fingerprint != nil {
		inner["CAFingerprint"] = fingerprint
	}
	return map[string]any{"PayloadContent": inner}, nil
}

func (s *SCEP) secrets() []namedSecret {
	// The pinned CA is who can read the challenge, as much as the URL.
	fingerprint, _ := s.caFingerprint()
	return []namedSecret{{"challenge", &s.Challenge, anchor(s.URL, hex.EncodeToString(fingerprint))}}
}

// caFingerprint decodes CAFingerprint: nil and true when unset, false when
// it is no SHA-256 or SHA-1 digest. Apple's devices tell the hash by the
// length; SHA-256 needs iOS 16 or macOS 13, older ones know only SHA-1
// (and MD5, which Steward does not take).
func (s *SCEP) caFingerprint() ([]byte, bool) {
	if s.CAFingerprint == "" {
		return nil, true
	}
	digits := s.CAFingerprint
	if strings.Contains(digits, ":") {
		pairs := strings.Split(digits, ":")
		for _, pair := range pairs {
			if len(pair) != 2 {
				return nil, false
			}
		}
		digits = strings.Join(pairs, "")
	}
	fingerprint, err := hex.DecodeString(digits)
	if err != nil || len(fingerprint) != sha256.Size && len(fingerprint) != sha1.Size {
		return nil, false
	}
	return fingerprint, true
}

// maxPKCS12Size bounds an uploaded identity file; real ones are a few KiB.
const maxPKCS12Size = 64 << 10

// PKCS12 configures com.apple.security.pkcs12: an identity (certificate and
// private key) shipped to the device. Both fields are secrets.
type PKCS12 struct {
	Data     SecretData `json:"data,omitzero"` // the .p12 file, base64 in JSON
	Password Secret     `json:"password,omitzero"`
	FileName string     `json:"file_name,omitempty"`
}

// now is the clock for certificate expiry checks.
var now = time.Now

func (p *PKCS12) validate(v *validator, path string) error {
	if err := checkText(path+".file_name", p.FileName, maxNameLength, false); err != nil {
		return err
	}
	if !p.Data.IsSet() {
		return fieldErr(path+".data", "is required: the base64 .p12 file")
	}
	if p.Data.Withheld() {
		return nil // checked when the file was given
	}
	data := p.Data.Reveal()
	if len(data) > maxPKCS12Size {
		return fieldErr(path+".data", "is larger than %d KiB; a single identity is far smaller", maxPKCS12Size>>10)
	}
	var tooMany *tooManyIterationsError
	switch err := checkPKCS12Iterations(data); {
	case errors.As(err, &tooMany):
		return fieldErr(path+".data", "%s; at most %d are accepted: export the identity again with your tool's default settings",
			tooMany, maxPKCS12Iterations)
	case err != nil:
		return errNotIdentity(path)
	}
	if p.Password.Withheld() || !v.openIdentities {
		return nil
	}
	_, cert, _, err := pkcs12.DecodeChain(data, string(p.Password.Reveal()))
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return fieldErr(path+".password", "does not open the PKCS#12 file; check the password")
	case err != nil:
		return errNotIdentity(path)
	}
	return checkCertificateDates(path+".data", cert)
}

func errNotIdentity(path string) error {
	return fieldErr(path+".data", "is not a PKCS#12 file holding one certificate and its private key; export the identity again as .p12")
}

func checkCertificateDates(path string, cert *x509.Certificate) error {
	t := now()
	if t.After(cert.NotAfter) {
		return fieldErr(path, "the certificate expired on %s; upload a current one", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if t.Before(cert.NotBefore) {
		return fieldErr(path, "the certificate is not valid before %s", cert.NotBefore.UTC().Format(time.DateOnly))
	}
	return nil
}

func (p *PKCS12) content(*builder) (map[string]any, error) {
	keys := map[string]any{
		"PayloadContent":   p.Data.Reveal(),
		"KeyIsExtractable": false,
	}
	if pw := p.Password.Reveal(); len(pw) > 0 {
		keys["Password"] = string(pw)
	}
	if p.FileName != "" {
		keys["PayloadCertificateFileName"] = p.FileName
	}
	return keys, nil
}

func (p *PKCS12) secrets() []namedSecret {
	// The identity stays on the device, so there is nothing to redirect;
	// the file and its password are kept together (keepIdentitiesWhole).
	return []namedSecret{{"data", &p.Data.Secret, ""}, {"password", &p.Password, ""}}
}
