package sim

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// EnrolByAccount is account-driven User Enrollment as a device and its user
// go through it: service discovery for account at origin (the account's
// domain), the enrolment request and its 401, the web sign-in with the
// invitation's code and the notice, the access token, and the profile;
// then SCEP, Authenticate and TokenUpdate.
func (d *Device) EnrolByAccount(ctx context.Context, origin, account, code string) error {
	if err := d.InstallByAccount(ctx, origin, account, code); err != nil {
		return err
	}
	if err := d.ObtainIdentity(ctx); err != nil {
		return err
	}
	return d.Complete(ctx)
}

// InstallByAccount is the first part of EnrolByAccount, up to the installed
// profile: what the employee does in Settings.
func (d *Device) InstallByAccount(ctx context.Context, origin, account, code string) error {
	web := d.webView()
	q := url.Values{"user-identifier": {account}, "model-family": {"iPhone"}}
	_, body, err := d.exchange(ctx, web, http.MethodGet, origin+"/.well-known/com.apple.remotemanagement?"+q.Encode(), "", nil, nil, http.StatusOK)
	if err != nil {
		return fmt.Errorf("service discovery: %w", err)
	}
	var discovered struct {
		Servers []struct{ Version, BaseURL string }
	}
	if err := json.Unmarshal(body, &discovered); err != nil || len(discovered.Servers) == 0 || discovered.Servers[0].Version != "mdm-byod" {
		return fmt.Errorf("service discovery answered %q", body)
	}
	baseURL := discovered.Servers[0].BaseURL
	info, err := d.machineInfo()
	if err != nil {
		return err
	}
	resp, _, err := d.exchange(ctx, web, http.MethodPost, baseURL, "application/pkcs7-signature", info, nil, http.StatusUnauthorized)
	if err != nil {
		return fmt.Errorf("first enrolment request: %w", err)
	}
	webAuth := webAuthURL.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if webAuth == nil {
		return fmt.Errorf("the 401 names no apple-as-web sign-in: %q", resp.Header.Get("WWW-Authenticate"))
	}
	token, err := d.signIn(ctx, webAuth[1]+"?"+url.Values{"user-identifier": {account}}.Encode(), account, code)
	if err != nil {
		return fmt.Errorf("signing in: %w", err)
	}
	_, signed, err := d.exchange(ctx, web, http.MethodPost, baseURL, "application/pkcs7-signature", info, map[string]string{"Authorization": "Bearer " + token}, http.StatusOK)
	if err != nil {
		return fmt.Errorf("enrolment request with the access token: %w", err)
	}
	if err := d.useProfile(signed); err != nil {
		return err
	}
	// As a device does: a profile for another Managed Apple Account than
	// the one signed in is not installed.
	if !strings.EqualFold(d.profile.assignedAccount, account) {
		named := d.profile.assignedAccount
		d.profile = profileInfo{}
		return fmt.Errorf("the profile names the Managed Apple Account %q, not %q, the one signed in", named, account)
	}
	return nil
}

// machineInfo is the body of the enrolment request: the device's language,
// product and build, signed by its built-in identity. A real device's
// identity is Apple's; the simulator makes one up, which Steward accepts as
// it checks no signature there.
func (d *Device) machineInfo() ([]byte, error) {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Simulated device identity"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, d.envelopeKey.Public(), d.envelopeKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return mdmproto.SignMachineInfo(mdmproto.MachineInfo{Language: "en", Product: d.ProductName, Version: "22B83"}, cert, d.envelopeKey)
}

// webView is the device's client for the enrolment flow: it follows
// redirects within the web but stops at the sign-in callback, as the
// authentication session does.
func (d *Device) webView() *http.Client {
	c := *d.http
	c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(r.URL.Scheme, "http") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &c
}

var webAuthURL = regexp.MustCompile(`^Bearer method="apple-as-web", url="([^"]+)"$`)

// signIn is the web view: the code, the notice, and the redirect to the
// callback that carries the access token.
func (d *Device) signIn(ctx context.Context, pageURL, account, code string) (string, error) {
	web := d.webView()
	if _, _, err := d.exchange(ctx, web, http.MethodGet, pageURL, "", nil, nil, http.StatusOK); err != nil {
		return "", err
	}
	form := url.Values{"code": {code}, "user-identifier": {account}}
	resp, page, err := d.exchange(ctx, web, http.MethodPost, pageURL, "application/x-www-form-urlencoded", []byte(form.Encode()), nil, http.StatusOK)
	if err != nil {
		return "", err
	}
	invitation := resp.Request.URL // after the redirect to the notice
	if version := noticeVersion.FindSubmatch(page); version != nil {
		accept := url.Values{"language": {"en"}, "notice_version": {string(version[1])}}
		if _, _, err := d.exchange(ctx, web, http.MethodPost, invitation.String(), "application/x-www-form-urlencoded", []byte(accept.Encode()), nil, http.StatusOK); err != nil {
			return "", fmt.Errorf("accepting the notice: %w", err)
		}
	}
	tokenURL := invitation.ResolveReference(&url.URL{Path: invitation.Path + "/account-token"})
	resp, _, err = d.exchange(ctx, web, http.MethodPost, tokenURL.String(), "application/x-www-form-urlencoded", nil, nil, http.StatusPermanentRedirect)
	if err != nil {
		return "", err
	}
	callback, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || callback.Scheme != "apple-remotemanagement-user-login" || callback.Host != "authentication-results" {
		return "", fmt.Errorf("the sign-in ended at %q", resp.Header.Get("Location"))
	}
	token := callback.Query().Get("access-token")
	if token == "" {
		return "", errors.New("the callback carries no access token")
	}
	return token, nil
}
