package mdm

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

// FuzzCertificateObservations: whatever a device puts in a certificate
// list becomes a bounded, JSON-encodable value, never a panic.
func FuzzCertificateObservations(f *testing.F) {
	f.Add("Erika's identity", true, []byte{0x30, 0x82, 0x01})
	f.Add("", false, []byte{})
	f.Add("\xff\xfe broken utf-8", true, []byte("not DER at all"))
	f.Fuzz(func(t *testing.T, name string, identity bool, der []byte) {
		obs := certificateObservations([]mdmproto.InstalledCertificate{{CommonName: name, IsIdentity: identity, Data: der}})
		if len(obs) != 1 || obs[0].Field != "security.certificates" {
			t.Fatalf("observations: %+v", obs)
		}
		if _, err := json.Marshal(obs[0].Value); err != nil {
			t.Fatalf("not JSON-encodable: %v", err)
		}
		if got := obs[0].Value.([]Certificate); len(got) != 1 || len(got[0].CommonName) > 256 {
			t.Fatalf("not bounded: %+v", got)
		}
	})
}

// FuzzBoundedErrorChain: whatever error chain a device sends is stored as
// valid, bounded JSON that still names the first error.
func FuzzBoundedErrorChain(f *testing.F) {
	f.Add("MCProfileErrorDomain", 4001, "The profile could not be installed.", 3, true)
	f.Add("\xff\xfe", -1, "\x00"+string(make([]byte, 5000)), 200, true)
	f.Add("MCProfileErrorDomain", 4001, "The profile “Erika's VPN” could not be removed.", 2, false)
	f.Fuzz(func(t *testing.T, domain string, code int, text string, n int, described bool) {
		chain := make([]mdmproto.ErrorChainItem, min(max(n, 0), 1000))
		for i := range chain {
			chain[i] = mdmproto.ErrorChainItem{ErrorCode: code, ErrorDomain: domain, USEnglishDescription: text}
		}
		out, err := boundedErrorChain(chain, described)
		if err != nil {
			t.Fatal(err)
		}
		var back []mdmproto.ErrorChainItem
		if err := json.Unmarshal(out, &back); err != nil || len(back) > maxErrorChainItems || (len(out) > maxErrorChain && len(back) > 1) {
			t.Fatalf("%d bytes, %d entries, %v", len(out), len(back), err)
		}
		if len(chain) > 0 && back[0].ErrorCode != code {
			t.Fatalf("the first error's code was lost: %+v", back[0])
		}
		for _, e := range back {
			if !described && (e.LocalizedDescription != "" || e.USEnglishDescription != "") {
				t.Fatalf("a description was kept: %+v", e)
			}
			if e.ErrorDomain == "" || deviceErrorDomain(e.ErrorDomain) != e.ErrorDomain {
				t.Fatalf("a device's entry kept without an identifier for its domain, which tells it from Steward's own: %q", e.ErrorDomain)
			}
		}
		// What outlives the command never holds the device's words, and a
		// strip pass leaves none on it.
		if len(back) > 0 {
			if record, want := ErrorRecord(string(out)), fmt.Sprintf("%s error %d", back[0].ErrorDomain, back[0].ErrorCode); record != want {
				t.Fatalf("the record %q is not %q, Apple's names alone", record, want)
			}
		}
		stripped, _, err := stripDeviceText(string(out))
		var left []mdmproto.ErrorChainItem
		if err != nil || json.Unmarshal([]byte(stripped), &left) != nil {
			t.Fatalf("stripped chain %s (%v)", stripped, err)
		}
		for _, e := range left {
			if e.LocalizedDescription != "" || e.USEnglishDescription != "" {
				t.Fatalf("a strip pass left the device's description: %+v", e)
			}
		}
	})
}
