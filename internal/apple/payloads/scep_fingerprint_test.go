package payloads

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
)

func scepDefinition(scep map[string]any) map[string]any {
	return map[string]any{"name": "Cert", "identifier": "com.example.cert", "payloads": []any{
		map[string]any{"type": "scep", "scep": scep}}}
}

// colonHex writes b as openssl x509 -fingerprint prints it: AB:CD:...
func colonHex(b []byte) string {
	pairs := make([]string, len(b))
	for i, c := range b {
		pairs[i] = strings.ToUpper(hex.EncodeToString([]byte{c}))
	}
	return strings.Join(pairs, ":")
}

// Over http the device's only proof that the CA certificate it is given
// is the real one is CAFingerprint: without it anyone on the way could
// hand it their own CA and read the challenge it encrypts to that CA.
func TestSCEPOverHTTPNeedsCAFingerprint(t *testing.T) {
	ca, _ := newIdentity(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	sha256Sum, sha1Sum := sha256.Sum256(ca.Raw), sha1.Sum(ca.Raw)

	for _, url := range []string{"http://ca.example.com/scep", "HTTP://ca.example.com/scep"} {
		_, err := ParseDefinition(mustJSON(t, scepDefinition(map[string]any{"url": url, "challenge": "c"})))
		if e := apperr.As(err); e == nil || e.Kind != apperr.KindInvalid || e.Details["field"] != "payloads[0].scep.url" ||
			!strings.Contains(err.Error(), "ca_fingerprint") {
			t.Errorf("%s without a fingerprint: %v, want invalid_request on payloads[0].scep.url naming ca_fingerprint", url, err)
		}
	}

	cases := []struct {
		name, url, fingerprint string
		want                   []byte
	}{
		{"http, SHA-256 as openssl prints it", "http://ca.example.com/scep", colonHex(sha256Sum[:]), sha256Sum[:]},
		{"HTTP in capitals, SHA-256 in plain hex", "HTTP://ca.example.com/scep", hex.EncodeToString(sha256Sum[:]), sha256Sum[:]},
		{"http, SHA-1", "http://ca.example.com/scep", hex.EncodeToString(sha1Sum[:]), sha1Sum[:]},
		{"https, SHA-256", "https://ca.example.com/scep", colonHex(sha256Sum[:]), sha256Sum[:]},
		{"https without one", "https://ca.example.com/scep", "", nil},
	}
	for _, c := range cases {
		scep := map[string]any{"url": c.url, "challenge": "c"}
		if c.fingerprint != "" {
			scep["ca_fingerprint"] = c.fingerprint
		}
		out, err := mustParse(t, scepDefinition(scep)).Build()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		inner := payloadsOf(t, decodeBuilt(t, out))[0]["PayloadContent"].(map[string]any)
		got, present := inner["CAFingerprint"]
		switch {
		case c.want == nil && present:
			t.Errorf("%s: CAFingerprint %v written, want none", c.name, got)
		case c.want != nil && !bytes.Equal(asBytes(got), c.want):
			t.Errorf("%s: CAFingerprint = %#v, want the digest as data", c.name, got)
		}
	}

	for name, bad := range map[string]string{
		"MD5":              strings.Repeat("ab", 16),
		"31 bytes":         strings.Repeat("ab", 31),
		"not hex":          strings.Repeat("zz", 32),
		"misplaced colons": "abc:d" + strings.Repeat("ab", 30),
		"empty byte":       "::" + strings.Repeat("ab", 20),
	} {
		_, err := ParseDefinition(mustJSON(t, scepDefinition(map[string]any{"url": "http://ca.example.com/scep", "ca_fingerprint": bad})))
		if e := apperr.As(err); e == nil || e.Details["field"] != "payloads[0].scep.ca_fingerprint" || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("%s: %v, want invalid_request on payloads[0].scep.ca_fingerprint", name, err)
		}
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// The pinned CA decides who can read the challenge: an admin who cannot
// read the stored challenge must not keep it while pinning a CA of theirs.
func TestSCEPChallengeIsKeptOnlyWithItsCA(t *testing.T) {
	stored := mustParse(t, scepDefinition(map[string]any{"url": "http://ca.example.com/scep", "challenge": "scep-challenge",
		"ca_fingerprint": strings.Repeat("ab", 32)}))
	edited := func(fingerprint string) Definition {
		var tree map[string]any
		if err := json.Unmarshal(mustJSON(t, stored.Redacted()), &tree); err != nil {
			t.Fatal(err)
		}
		setPath(tree, []any{"payloads", 0, "scep", "ca_fingerprint"}, fingerprint)
		return mustParse(t, tree)
	}
	merged, err := MergeSecrets(edited(colonHex(bytes.Repeat([]byte{0xab}, 32))), stored)
	if err != nil || string(merged.Payloads[0].SCEP.Challenge.Reveal()) != "scep-challenge" {
		t.Fatalf("the same fingerprint written with colons: %v", err)
	}
	_, err = MergeSecrets(edited(strings.Repeat("cd", 32)), stored)
	if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[0].scep.challenge") {
		t.Fatalf("another CA pinned: err = %v, want the challenge asked for again", err)
	}
}
