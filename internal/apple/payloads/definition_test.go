package payloads

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
)

func TestParseDefinitionRejects(t *testing.T) {
	expiredP12 := base64.StdEncoding.EncodeToString(newP12(t, "p12-pass", time.Now().Add(-time.Hour)))
	wrongPwP12 := base64.StdEncoding.EncodeToString(newP12(t, "other", time.Now().Add(time.Hour)))
	cases := []struct {
		name   string
		path   []any
		value  any
		field  string // apperr detail "field"
		inText string
	}{
		{"missing name", []any{"name"}, "", "name", "is required"},
		{"bad identifier", []any{"identifier"}, "corp", "identifier", "reverse-DNS"},
		{"identifier with space", []any{"identifier"}, "com.example. corp", "identifier", "reverse-DNS"},
		{"bad scope", []any{"scope"}, "Device", "scope", `"System" or "User"`},
		{"no payloads", []any{"payloads"}, []any{}, "payloads", "at least one"},
		{"unknown type", []any{"payloads", 8, "type"}, "font", "payloads[8].type", "unknown payload type"},
		{"body mismatch", []any{"payloads", 8, "type"}, "restrictions", "payloads[8]", "exactly one body"},
		{"duplicate id", []any{"payloads", 3, "id"}, "wifi-cert", "payloads[3].id", "unique"},
		{"bad id", []any{"payloads", 3, "id"}, "has space", "payloads[3].id", "letters, digits"},
		{"ssid too long", []any{"payloads", 2, "wifi", "ssid"}, strings.Repeat("s", 33), "payloads[2].wifi.ssid", "32 bytes"},
		{"short wpa passphrase", []any{"payloads", 2, "wifi", "password"}, "short", "payloads[2].wifi.password", "8 to 63"},
		{"bad security", []any{"payloads", 2, "wifi", "security"}, "wep", "payloads[2].wifi.security", "must be one of"},
		{"http pac", []any{"payloads", 2, "wifi", "proxy", "pac_url"}, "http://proxy.example.com/p.pac", "payloads[2].wifi.proxy.pac_url", "https URL"},
		{"enterprise without eap", []any{"payloads", 1, "wifi", "eap"}, nil, "payloads[1].wifi.eap", "is required"},
		{"eap-tls dangling cert", []any{"payloads", 1, "wifi", "eap", "certificate"}, "nope", "payloads[1].wifi.eap.certificate", `no scep or pkcs12 payload has id "nope"`},
		{"eap no trusted names", []any{"payloads", 1, "wifi", "eap", "trusted_server_names"}, []any{}, "payloads[1].wifi.eap.trusted_server_names", "RADIUS"},
		{"eap bad method", []any{"payloads", 1, "wifi", "eap", "method"}, "leap", "payloads[1].wifi.eap.method", "tls"},
		{"peap without username", []any{"payloads", 1, "wifi", "eap", "method"}, "peap", "payloads[1].wifi.eap.username", "is required"},
		{"vpn weak dh", []any{"payloads", 5, "vpn", "crypto", "dh_group"}, 2, "payloads[5].vpn.crypto.dh_group", "too weak"},
		{"vpn 3des", []any{"payloads", 5, "vpn", "crypto", "encryption"}, "3DES", "payloads[5].vpn.crypto.encryption", "AES-256-GCM"},
		{"vpn sha1", []any{"payloads", 5, "vpn", "crypto", "integrity"}, "SHA1-96", "payloads[5].vpn.crypto.integrity", "SHA2-256"},
		{"vpn short psk", []any{"payloads", 5, "vpn", "shared_secret"}, "short", "payloads[5].vpn.shared_secret", "at least 16"},
		{"vpn url as address", []any{"payloads", 5, "vpn", "remote_address"}, "https://vpn.example.com", "payloads[5].vpn.remote_address", "host name or IP"},
		{"vpn without local identifier", []any{"payloads", 5, "vpn", "local_identifier"}, nil, "payloads[5].vpn.local_identifier", "is required: give the identity"},
		{"vpn blank local identifier", []any{"payloads", 4, "vpn", "local_identifier"}, " ", "payloads[4].vpn.local_identifier", "is required"},
		{"vpn cert missing", []any{"payloads", 4, "vpn", "certificate"}, nil, "payloads[4].vpn.certificate", "name the id"},
		{"vpn bad auth", []any{"payloads", 4, "vpn", "auth"}, "eap", "payloads[4].vpn.auth", "certificate"},
		{"eas bad email", []any{"payloads", 6, "exchange", "email_address"}, "not-an-email", "payloads[6].exchange.email_address", "email address"},
		{"eas past days", []any{"payloads", 6, "exchange", "past_days_to_sync"}, 5, "payloads[6].exchange.past_days_to_sync", "1, 3, 7"},
		{"mail bad host", []any{"payloads", 7, "mail", "incoming", "host"}, "imap.example.com:993", "payloads[7].mail.incoming.host", "host name"},
		{"mail bad port", []any{"payloads", 7, "mail", "outgoing", "port"}, 70000, "payloads[7].mail.outgoing.port", "65535"},
		{"mail password and same", []any{"payloads", 7, "mail", "outgoing", "password"}, "x", "payloads[7].mail.outgoing.password", "same_as_incoming"},
		{"passcode range", []any{"payloads", 8, "passcode", "max_failed_attempts"}, 1, "payloads[8].passcode.max_failed_attempts", "between 2 and 11"},
		{"passcode empty", []any{"payloads", 8, "passcode"}, map[string]any{}, "payloads[8].passcode", "at least one"},
		{"restrictions empty", []any{"payloads", 9, "restrictions"}, map[string]any{}, "payloads[9].restrictions", "at least one"},
		{"scep 1024", []any{"payloads", 0, "scep", "key_size"}, 1024, "payloads[0].scep.key_size", "too weak"},
		{"scep ftp", []any{"payloads", 0, "scep", "url"}, "ftp://ca.example.com", "payloads[0].scep.url", "https or http"},
		{"scep subject type", []any{"payloads", 0, "scep", "subject"}, []any{map[string]any{"type": "XX", "value": "v"}}, "payloads[0].scep.subject", "attribute types"},
		{"pkcs12 expired", []any{"payloads", 3, "pkcs12", "data"}, expiredP12, "payloads[3].pkcs12.data", "expired"},
		{"pkcs12 wrong password", []any{"payloads", 3, "pkcs12", "data"}, wrongPwP12, "payloads[3].pkcs12.password", "does not open"},
		{"pkcs12 garbage", []any{"payloads", 3, "pkcs12", "data"}, base64.StdEncoding.EncodeToString([]byte("garbage")), "payloads[3].pkcs12.data", "not a PKCS#12"},
		{"pkcs12 missing", []any{"payloads", 3, "pkcs12", "data"}, nil, "payloads[3].pkcs12.data", "is required"},
		{"webclip http", []any{"payloads", 10, "webclip", "url"}, "http://intranet.example.com", "payloads[10].webclip.url", "https URL"},
		{"webclip icon not image", []any{"payloads", 10, "webclip", "icon"}, base64.StdEncoding.EncodeToString([]byte("GIF89a")), "payloads[10].webclip.icon", "PNG or JPEG"},
		{"secret with control char", []any{"payloads", 6, "exchange", "password"}, "pass\x01word", "payloads[6].exchange.password", "control characters"},
		{"ssid with control char", []any{"payloads", 2, "wifi", "ssid"}, "a\x00b", "payloads[2].wifi.ssid", "control characters"},
		{"display name newline", []any{"payloads", 10, "display_name"}, "a\nb", "payloads[10].display_name", "single line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def := fullDefinition(t)
			setPath(def, c.path, c.value)
			_, err := ParseDefinition(mustJSON(t, def))
			if err == nil {
				t.Fatal("accepted")
			}
			e := apperr.As(err)
			if e.Kind != apperr.KindInvalid {
				t.Fatalf("kind = %s, want invalid_request (%v)", e.Kind, err)
			}
			if e.Details["field"] != c.field {
				t.Errorf("field = %v, want %s (%v)", e.Details["field"], c.field, err)
			}
			if !strings.Contains(e.Message, c.inText) {
				t.Errorf("message %q does not contain %q", e.Message, c.inText)
			}
		})
	}
}

func TestParseDefinitionStrictJSON(t *testing.T) {
	valid := string(mustJSON(t, fullDefinition(t)))
	cases := []struct {
		name   string
		input  string
		kind   apperr.Kind
		inText string
	}{
		{"unknown top field", `{"name":"x","identifer":"com.example.x","payloads":[]}`, apperr.KindInvalid, `unknown field "identifer"`},
		{"unknown nested field", strings.Replace(valid, `"ssid":"Corp"`, `"ssid":"Corp","colour":"red"`, 1), apperr.KindInvalid, `unknown field "colour"`},
		{"trailing data", valid + `{}`, apperr.KindInvalid, "single JSON object"},
		{"wrong type", `{"name":5}`, apperr.KindInvalid, `"name" has the wrong type`},
		{"truncated", valid[:len(valid)/2], apperr.KindInvalid, "not valid"},
		{"secret wrong shape", strings.Replace(valid, `"password":"guest-passphrase"`, `"password":42`, 1), apperr.KindInvalid, "secret must be a string"},
		{"too large", `{"name":"` + strings.Repeat("a", MaxDefinitionSize) + `"}`, apperr.KindTooLarge, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(c.input))
			if err == nil {
				t.Fatal("accepted")
			}
			e := apperr.As(err)
			if e.Kind != c.kind || !strings.Contains(e.Message, c.inText) {
				t.Errorf("got %s %q, want %s containing %q", e.Kind, e.Message, c.kind, c.inText)
			}
		})
	}
}

func TestErrorsDoNotEchoSecrets(t *testing.T) {
	def := fullDefinition(t)
	setPath(def, []any{"payloads", 2, "wifi", "password"}, "sec")
	_, err := ParseDefinition(mustJSON(t, def))
	if err == nil || strings.Contains(err.Error(), "sec\"") || strings.Contains(err.Error(), ": sec") {
		t.Fatalf("err = %v", err)
	}
	s := NewSecret("hunter22")
	for _, got := range []string{formatAll(s), string(mustJSON(t, s))} {
		if strings.Contains(got, "hunter22") {
			t.Errorf("secret leaked: %s", got)
		}
	}
}

func formatAll(v any) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		b.WriteString(fmtSprintf(verb, v))
	}
	return b.String()
}
