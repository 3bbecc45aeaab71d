package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"

	"github.com/steward-mdm/steward/internal/api"
)

// PushCertificateFormat is how a push certificate file is encoded.
type PushCertificateFormat string

const (
	// FormatPEM is a certificate and its unencrypted private key in PEM
	// blocks, in one file.
	FormatPEM PushCertificateFormat = "PEM"
	// FormatPKCS12 is a PKCS#12 (.p12) file, opened with a password.
	FormatPKCS12 PushCertificateFormat = "PKCS#12"
)

// Errors DetectPushCertificateFormat returns.
var (
	ErrEmptyPushCertificate = errors.New("the file is empty")
	// ErrDERCertificateOnly: a lone DER certificate (.cer), as Apple's push
	// certificates portal hands it out, without the private key that
	// stayed in the keychain of the Mac that made the request.
	ErrDERCertificateOnly = errors.New("the file is a certificate without its private key (.cer); export the certificate " +
		"with its key as a .p12 file (Keychain Access, on the Mac that made the request), or give the certificate and key as PEM")
	ErrNotPushCertificate = errors.New("the file is neither PEM nor PKCS#12")
)

// DetectPushCertificateFormat tells PEM from PKCS#12 by content, the way
// the server does (a file with a "-----BEGIN " line is PEM, anything else
// is taken for PKCS#12), so that the CLI asks for a password exactly when
// the server will use one. What cannot be PKCS#12 is refused here rather
// than after a password prompt.
func DetectPushCertificateFormat(data []byte) (PushCertificateFormat, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return "", ErrEmptyPushCertificate
	case bytes.Contains(data, []byte("-----BEGIN ")):
		return FormatPEM, nil
	case data[0] != 0x30: // PKCS#12 is a DER (or BER) SEQUENCE
		return "", ErrNotPushCertificate
	}
	if _, err := x509.ParseCertificate(data); err == nil {
		return "", ErrDERCertificateOnly
	}
	return FormatPKCS12, nil
}

func pushCertificatePath(tenant string) string {
	return "/api/v1/tenants/" + url.PathEscape(tenant) + "/apple/push-certificate"
}

// SetPushCertificate uploads the tenant's APNs push certificate: data is
// the PEM or PKCS#12 file as it is, password opens a PKCS#12 file (ignored
// for PEM). replaceTopic lets a certificate for another topic replace the
// current one although devices are enrolled under it: each of them stops
// receiving pushes and must enrol again. The server's refusals come back as
// *Error in its words (400 for a certificate it cannot use or a wrong
// password, 409 for a topic change without replaceTopic).
func (c *Client) SetPushCertificate(ctx context.Context, tenant string, data []byte, password string, replaceTopic bool) (api.PushCertificateView, error) {
	in := api.PushCertificateRequest{Certificate: base64.StdEncoding.EncodeToString(data), Password: password, ReplaceTopic: replaceTopic}
	var out api.PushCertificateView
	err := c.Do(ctx, "PUT", pushCertificatePath(tenant), in, &out)
	return out, err
}

// PushCertificate returns the tenant's push certificate status: topic,
// expiry, health and APNs' standing refusal, if any. A tenant without one
// gets a 409 *Error.
func (c *Client) PushCertificate(ctx context.Context, tenant string) (api.PushCertificateView, error) {
	var out api.PushCertificateView
	err := c.Do(ctx, "GET", pushCertificatePath(tenant), nil, &out)
	return out, err
}
