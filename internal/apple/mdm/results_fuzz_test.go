package mdm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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

// FuzzTelephonyFromServiceSubscriptions: whatever lines a device lists,
// each telephony field is observed once at most, with a value one of its
// lines holds (the phone number, SIM and carrier all from the same line),
// never one made up, and JSON-encodable.
func FuzzTelephonyFromServiceSubscriptions(f *testing.F) {
	f.Add("+49 1575 5550100", "35 693803 564380 9", "8949 0200 0012 3456 7890", "Telekom.de", uint8(0b0110), "+49 1520 5550199", "", uint8(0b1001), uint8(2))
	f.Add(" ", "\xff\xfe", "", "", uint8(0xff), "", "35 693803 564381 7", uint8(0), uint8(1))
	f.Add("", "", "", "", uint8(0), "", "", uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, phone, imei, iccid, carrier string, flags uint8, otherPhone, otherIMEI string, otherFlags, n uint8) {
		flag := func(bits uint8, i int) *bool {
			if bits&(1<<(2*i)) == 0 {
				return nil
			}
			b := bits&(1<<(2*i+1)) != 0
			return &b
		}
		lines := []mdmproto.ServiceSubscription{
			{PhoneNumber: phone, IMEI: imei, ICCID: iccid, CurrentCarrierNetwork: carrier, IsDataPreferred: flag(flags, 0), IsVoicePreferred: flag(flags, 1)},
			{PhoneNumber: otherPhone, IMEI: otherIMEI, ICCID: carrier, CurrentCarrierNetwork: iccid, IsDataPreferred: flag(otherFlags, 0),
				IsVoicePreferred: flag(otherFlags, 1)},
		}
		lines = lines[:int(n)%3]
		seen := map[string]string{}
		for _, o := range deviceInformationObservations(mdmproto.DeviceInformationResult{ServiceSubscriptions: lines}) {
			v, ok := o.Value.(string)
			if _, twice := seen[o.Field]; twice || !ok || v == "" {
				t.Fatalf("%s observed as %#v (twice %v)", o.Field, o.Value, twice)
			}
			if _, err := json.Marshal(o.Value); err != nil {
				t.Fatalf("%s not JSON-encodable: %v", o.Field, err)
			}
			seen[o.Field] = v
		}
		from := func(field string, get func(mdmproto.ServiceSubscription) string) []int {
			var out []int
			for i, l := range lines {
				if v, ok := seen[field]; ok && strings.TrimSpace(get(l)) == v {
					out = append(out, i)
				}
			}
			if _, ok := seen[field]; ok && len(out) == 0 {
				t.Fatalf("%s = %q, which no line holds", field, seen[field])
			}
			return out
		}
		from("telephony.imei", func(l mdmproto.ServiceSubscription) string { return l.IMEI })
		lineOf := map[string][]int{
			"telephony.phone_number": from("telephony.phone_number", func(l mdmproto.ServiceSubscription) string { return l.PhoneNumber }),
			"telephony.iccid":        from("telephony.iccid", func(l mdmproto.ServiceSubscription) string { return l.ICCID }),
			"telephony.carrier":      from("telephony.carrier", func(l mdmproto.ServiceSubscription) string { return l.CurrentCarrierNetwork }),
		}
		if len(lineOf["telephony.phone_number"])+len(lineOf["telephony.iccid"])+len(lineOf["telephony.carrier"]) == 0 {
			return
		}
		// One line holds them all.
		for i := range lines {
			all := true
			for _, holders := range lineOf {
				if len(holders) > 0 && !slices.Contains(holders, i) {
					all = false
				}
			}
			if all {
				return
			}
		}
		t.Fatalf("the line's fields come from different lines: %v of %+v", lineOf, lines)
	})
}
