package payloads

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
)

var plaintexts = []string{"scep-challenge", "guest-passphrase", "p12-pass", "a-long-shared-secret", "eas-pass", "imap-pass"}

func TestSplitSecretsAndRestore(t *testing.T) {
	d := mustParse(t, fullDefinition(t))
	want, err := d.Build()
	if err != nil {
		t.Fatal(err)
	}
	public, secrets := d.SplitSecrets()

	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{
		"payloads[0].scep.challenge", "payloads[2].wifi.password", "payloads[3].pkcs12.data", "payloads[3].pkcs12.password",
		"payloads[5].vpn.shared_secret", "payloads[6].exchange.password", "payloads[7].mail.incoming.password",
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("secret keys = %v\nwant %v", keys, wantKeys)
	}
	if string(secrets["payloads[2].wifi.password"]) != "guest-passphrase" {
		t.Errorf("wifi password = %q", secrets["payloads[2].wifi.password"])
	}

	stored := mustJSON(t, public)
	for _, p := range plaintexts {
		if bytes.Contains(stored, []byte(p)) {
			t.Errorf("public JSON contains secret %q", p)
		}
	}
	if !bytes.Contains(stored, []byte(`"password":{"set":true}`)) {
		t.Errorf("public JSON lacks the set marker: %s", stored)
	}
	if _, err := d.Build(); err != nil {
		t.Errorf("SplitSecrets changed the original: %v", err)
	}

	// Storage round trip: public JSON back through the parser, then restore.
	reloaded, err := ParseDefinition(stored)
	if err != nil {
		t.Fatalf("parse stored public definition: %v", err)
	}
	restored, err := reloaded.WithSecrets(secrets)
	if err != nil {
		t.Fatalf("WithSecrets: %v", err)
	}
	got, err := restored.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("restored definition builds different bytes")
	}
}

func TestWithSecretsMismatch(t *testing.T) {
	public, secrets := mustParse(t, fullDefinition(t)).SplitSecrets()
	missing := clone(secrets)
	delete(missing, "payloads[5].vpn.shared_secret")
	extra := clone(secrets)
	extra["payloads[9].restrictions.password"] = []byte("x")
	empty := clone(secrets)
	empty["payloads[6].exchange.password"] = nil
	for name, m := range map[string]map[string][]byte{"missing": missing, "extra": extra, "empty": empty} {
		if _, err := public.WithSecrets(m); !apperr.IsKind(err, apperr.KindInvalid) {
			t.Errorf("%s: err = %v, want invalid_request", name, err)
		}
	}
}

func TestRedactedAndMergeSecrets(t *testing.T) {
	stored := mustParse(t, fullDefinition(t))
	want, err := stored.Build()
	if err != nil {
		t.Fatal(err)
	}
	apiOut := mustJSON(t, stored.Redacted())
	for _, p := range plaintexts {
		if bytes.Contains(apiOut, []byte(p)) {
			t.Fatalf("redacted JSON contains %q", p)
		}
	}
	if _, err := stored.Build(); err != nil {
		t.Fatalf("Redacted changed the original: %v", err)
	}

	edit := func(mutate func(map[string]any)) Definition {
		var tree map[string]any
		if err := json.Unmarshal(apiOut, &tree); err != nil {
			t.Fatal(err)
		}
		mutate(tree)
		d, err := ParseDefinition(mustJSON(t, tree))
		if err != nil {
			t.Fatalf("parse edited definition: %v", err)
		}
		return d
	}

	t.Run("unchanged keeps every secret", func(t *testing.T) {
		merged, err := MergeSecrets(edit(func(map[string]any) {}), stored)
		if err != nil {
			t.Fatal(err)
		}
		got, err := merged.Build()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("merged build differs (err %v)", err)
		}
	})
	t.Run("new value replaces", func(t *testing.T) {
		merged, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 6, "exchange", "password"}, "new-eas-pass")
		}), stored)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(merged.Payloads[6].Exchange.Password.Reveal()); got != "new-eas-pass" {
			t.Errorf("exchange password = %q", got)
		}
		if got := string(merged.Payloads[5].VPN.SharedSecret.Reveal()); got != "a-long-shared-secret" {
			t.Errorf("kept shared secret = %q", got)
		}
	})
	t.Run("omitted secret is removed", func(t *testing.T) {
		merged, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 6, "exchange", "password"}, nil)
		}), stored)
		if err != nil {
			t.Fatal(err)
		}
		out, err := merged.Build()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := payloadsOf(t, decodeBuilt(t, out))[6]["Password"]; ok {
			t.Error("removed Exchange password still built")
		}
	})
	t.Run("moved payload cannot take another's secret", func(t *testing.T) {
		_, err := MergeSecrets(edit(func(m map[string]any) {
			list := m["payloads"].([]any)
			list[4], list[5] = list[5], list[4] // both VPNs; ids differ
		}), stored)
		if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[4].vpn.shared_secret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("redirected server must re-enter the secret", func(t *testing.T) {
		_, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 5, "vpn", "remote_address"}, "attacker.example.net")
		}), stored)
		if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[5].vpn.shared_secret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("moving the outgoing server takes the shared incoming password", func(t *testing.T) {
		_, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 7, "mail", "outgoing", "host"}, "smtp.attacker.example.net")
		}), stored)
		if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[7].mail.incoming.password") {
			t.Fatalf("err = %v", err)
		}
	})
	// An admin who cannot read the identity's secrets must not learn
	// whether the stored password opens a file of theirs, or whether a
	// password they guess opens the stored file: both guesses below are right.
	t.Run("new PKCS#12 file must come with its password", func(t *testing.T) {
		own := base64.StdEncoding.EncodeToString(newP12(t, "p12-pass", time.Now().Add(time.Hour)))
		_, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 3, "pkcs12", "data"}, own)
		}), stored)
		if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[3].pkcs12.password") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("new PKCS#12 password must come with its file", func(t *testing.T) {
		for name, password := range map[string]any{"guessed": "p12-pass", "removed": nil} {
			_, err := MergeSecrets(edit(func(m map[string]any) {
				setPath(m, []any{"payloads", 3, "pkcs12", "password"}, password)
			}), stored)
			if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[3].pkcs12.data") {
				t.Errorf("%s password: err = %v", name, err)
			}
		}
	})
	t.Run("new PKCS#12 file and password replace both", func(t *testing.T) {
		own := base64.StdEncoding.EncodeToString(newP12(t, "own-pass", time.Now().Add(time.Hour)))
		merged, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 3, "pkcs12", "data"}, own)
			setPath(m, []any{"payloads", 3, "pkcs12", "password"}, "own-pass")
		}), stored)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(merged.Payloads[3].PKCS12.Password.Reveal()); got != "own-pass" {
			t.Errorf("password = %q", got)
		}
	})
	t.Run("marker without stored value", func(t *testing.T) {
		_, err := MergeSecrets(edit(func(m map[string]any) {
			setPath(m, []any{"payloads", 1, "wifi", "eap", "method"}, "peap")
			setPath(m, []any{"payloads", 1, "wifi", "eap", "username"}, "alice")
			setPath(m, []any{"payloads", 1, "wifi", "eap", "password"}, map[string]any{"set": true})
		}), stored)
		if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "enter the secret") {
			t.Fatalf("err = %v", err)
		}
	})
}

func clone(m map[string][]byte) map[string][]byte {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
