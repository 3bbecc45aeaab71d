package payloads

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"howett.net/plist"
	"software.sslmate.com/src/go-pkcs12"
)

// testIcon starts like a PNG, which is all validation looks at.
var testIcon = []byte("\x89PNG\r\n\x1a\nicon-bytes")

// newIdentity makes a throwaway self-signed certificate valid between the
// given times.
func newIdentity(t testing.TB, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "steward test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newP12 returns a PKCS#12 identity protected by password.
func newP12(t testing.TB, password string, notAfter time.Time) []byte {
	t.Helper()
	cert, key := newIdentity(t, time.Now().Add(-time.Hour), notAfter)
	data, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fullDefinition returns a valid definition with one payload of every kind,
// as an admin would post it.
func fullDefinition(t testing.TB) map[string]any {
	t.Helper()
	p12 := base64.StdEncoding.EncodeToString(newP12(t, "p12-pass", time.Now().Add(365*24*time.Hour)))
	return map[string]any{
		"name":         "Corporate",
		"identifier":   "com.example.corp",
		"description":  "Network and mail",
		"organisation": "Example Ltd",
		"payloads": []any{
			map[string]any{"type": "scep", "id": "wifi-cert", "scep": map[string]any{
				"url": "https://ca.example.com/scep", "name": "ExampleCA", "challenge": "scep-challenge",
				"subject": []any{map[string]any{"type": "CN", "value": "device"}, map[string]any{"type": "O", "value": "Example"}, map[string]any{"type": "E", "value": "it@example.com"}},
			}},
			map[string]any{"type": "wifi", "wifi": map[string]any{
				"ssid": "Corp", "security": "wpa2_enterprise",
				"eap": map[string]any{"method": "tls", "certificate": "wifi-cert", "trusted_server_names": []any{"radius.example.com"}},
			}},
			map[string]any{"type": "wifi", "wifi": map[string]any{
				"ssid": "Guest", "security": "wpa3_personal", "password": "guest-passphrase", "hidden": true, "auto_join": false,
				"proxy": map[string]any{"type": "auto", "pac_url": "https://proxy.example.com/proxy.pac"},
			}},
			map[string]any{"type": "pkcs12", "id": "vpn-cert", "pkcs12": map[string]any{"data": p12, "password": "p12-pass", "file_name": "vpn.p12"}},
			map[string]any{"type": "vpn", "display_name": "Corp VPN", "vpn": map[string]any{
				"name": "Corp VPN", "remote_address": "vpn.example.com", "remote_identifier": "vpn.example.com",
				"local_identifier": "device", "auth": "certificate", "certificate": "vpn-cert", "certificate_type": "ECDSA256", "on_demand": true,
			}},
			map[string]any{"type": "vpn", "vpn": map[string]any{
				"name": "Lab VPN", "remote_address": "192.0.2.10", "remote_identifier": "lab", "local_identifier": "lab-client", "auth": "shared_secret",
				"shared_secret": "a-long-shared-secret", "crypto": map[string]any{"encryption": "AES-128-GCM", "integrity": "SHA2-384", "dh_group": 20},
			}},
			map[string]any{"type": "exchange", "exchange": map[string]any{
				"email_address": "user@example.com", "host": "mail.example.com", "username": "user", "password": "eas-pass", "past_days_to_sync": 7,
			}},
			map[string]any{"type": "mail", "mail": map[string]any{
				"description": "Work mail", "email_address": "user@example.com",
				"incoming": map[string]any{"host": "imap.example.com", "username": "user", "password": "imap-pass"},
				"outgoing": map[string]any{"host": "smtp.example.com", "port": 465, "username": "user", "same_as_incoming": true},
			}},
			map[string]any{"type": "passcode", "passcode": map[string]any{"min_length": 6, "allow_simple": false, "max_failed_attempts": 10}},
			map[string]any{"type": "restrictions", "restrictions": map[string]any{
				"allow_camera": false, "allow_open_from_managed_to_unmanaged": false, "allow_managed_apps_cloud_sync": true,
			}},
			map[string]any{"type": "webclip", "webclip": map[string]any{"label": "Intranet", "url": "https://intranet.example.com", "full_screen": true,
				"icon": base64.StdEncoding.EncodeToString(testIcon)}},
		},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, v any) Definition {
	t.Helper()
	d, err := ParseDefinition(mustJSON(t, v))
	if err != nil {
		t.Fatalf("ParseDefinition: %v", err)
	}
	return d
}

// decodeProfile decodes a built profile with howett.net/plist, as a device would.
func decodeBuilt(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var top map[string]any
	format, err := plist.Unmarshal(data, &top)
	if err != nil {
		t.Fatalf("decode built profile: %v", err)
	}
	if format != plist.XMLFormat {
		t.Fatalf("built profile format = %d, want XML", format)
	}
	return top
}

func payloadsOf(t testing.TB, top map[string]any) []map[string]any {
	t.Helper()
	list, ok := top["PayloadContent"].([]any)
	if !ok {
		t.Fatalf("PayloadContent is %T", top["PayloadContent"])
	}
	out := make([]map[string]any, len(list))
	for i, p := range list {
		out[i] = p.(map[string]any)
	}
	return out
}

// setPath replaces one value inside the generic JSON tree, e.g.
// setPath(def, []any{"payloads", 1, "wifi", "ssid"}, "x"); a nil value deletes.
func setPath(root map[string]any, path []any, value any) {
	var cur any = root
	for i, step := range path {
		last := i == len(path)-1
		switch c := cur.(type) {
		case map[string]any:
			k := step.(string)
			if last {
				if value == nil {
					delete(c, k)
				} else {
					c[k] = value
				}
				return
			}
			cur = c[k]
		case []any:
			idx := step.(int)
			if last {
				c[idx] = value
				return
			}
			cur = c[idx]
		}
	}
}

func fmtSprintf(format string, v any) string { return fmt.Sprintf(format, v) }
