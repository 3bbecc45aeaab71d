package payloads

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
)

// customProfile builds a small profile from generic payload dictionaries.
func customProfile(t testing.TB, format int, payloads ...map[string]any) []byte {
	t.Helper()
	content := make([]any, len(payloads))
	for i, p := range payloads {
		content[i] = p
	}
	top := map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": "com.example.custom",
		"PayloadUUID": "8F2C4E1A-1B2C-4D3E-8F90-112233445566", "PayloadDisplayName": "Custom",
		"PayloadContent": content,
	}
	out, err := plist.Marshal(top, format)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func payloadDict(typ, id, uuid string, extra ...any) map[string]any {
	p := map[string]any{"PayloadType": typ, "PayloadIdentifier": id, "PayloadUUID": uuid, "PayloadVersion": 1}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i].(string)] = extra[i+1]
	}
	return p
}

var (
	restrictionsPayload = payloadDict("com.apple.applicationaccess", "com.example.custom.r", "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F1", "allowCamera", false)
	wifiWithPassword    = payloadDict("com.apple.wifi.managed", "com.example.custom.w", "1A2B3C4D-5E6F-4A1B-8C2D-3E4F5A6B7C8D", "SSID_STR", "x", "Password", "secret-pass")
)

func sign(t testing.TB, content []byte, detached bool) []byte {
	t.Helper()
	cert, key := newIdentity(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	if detached {
		sd.Detach()
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestValidateCustomAccepts(t *testing.T) {
	built, err := mustParse(t, fullDefinition(t)).Build()
	if err != nil {
		t.Fatal(err)
	}
	xmlPlain := customProfile(t, plist.XMLFormat, restrictionsPayload)
	cases := []struct {
		name  string
		input []byte
		want  CustomProfile
	}{
		{"xml", xmlPlain, CustomProfile{Identifier: "com.example.custom", DisplayName: "Custom", PayloadTypes: []string{"com.apple.applicationaccess"}}},
		{"binary with secret", customProfile(t, plist.BinaryFormat, restrictionsPayload, wifiWithPassword), CustomProfile{
			Identifier: "com.example.custom", DisplayName: "Custom",
			PayloadTypes: []string{"com.apple.applicationaccess", "com.apple.wifi.managed"},
		}},
		{"signed", sign(t, xmlPlain, false), CustomProfile{
			Identifier: "com.example.custom", DisplayName: "Custom", PayloadTypes: []string{"com.apple.applicationaccess"}, Signed: true,
		}},
		{"steward build", built, CustomProfile{
			Identifier: "com.example.corp", DisplayName: "Corporate",
			PayloadTypes: []string{
				"com.apple.security.scep", "com.apple.wifi.managed", "com.apple.wifi.managed", "com.apple.security.pkcs12",
				"com.apple.vpn.managed", "com.apple.vpn.managed", "com.apple.eas.account", "com.apple.mail.managed",
				"com.apple.mobiledevice.passwordpolicy", "com.apple.applicationaccess", "com.apple.webClip.managed",
			},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateCustom(c.input, "com.example.steward.enrolment")
			if err != nil {
				t.Fatalf("ValidateCustom: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
			id, err := ProfileIdentifier(c.input)
			if err != nil || id != c.want.Identifier {
				t.Errorf("ProfileIdentifier = %q, %v", id, err)
			}
		})
	}
}

func TestValidateCustomRejects(t *testing.T) {
	xmlPlain := customProfile(t, plist.XMLFormat, restrictionsPayload)
	signed := sign(t, xmlPlain, false)
	tampered := bytes.Replace(signed, []byte("allowCamera"), []byte("allowCamerb"), 1)
	if bytes.Equal(tampered, signed) {
		t.Fatal("test setup: content not found in CMS")
	}
	withTop := func(key string, value any) []byte {
		var top map[string]any
		if _, err := plist.Unmarshal(xmlPlain, &top); err != nil {
			t.Fatal(err)
		}
		if value == nil {
			delete(top, key)
		} else {
			top[key] = value
		}
		out, err := plist.Marshal(top, plist.XMLFormat)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	openStep, err := plist.Marshal(map[string]any{"PayloadType": "Configuration"}, plist.OpenStepFormat)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		input  []byte
		kind   apperr.Kind
		inText string
	}{
		{"oversized", append(bytes.Repeat([]byte(" "), MaxCustomProfileSize), xmlPlain...), apperr.KindTooLarge, "larger than"},
		{"not a plist", []byte("hello"), apperr.KindInvalid, "not a property list"},
		{"openstep", openStep, apperr.KindInvalid, "not a property list"},
		{"deep xml", []byte("<plist>" + strings.Repeat("<array>", maxXMLDepth+1) + "</plist>"), apperr.KindInvalid, "nests deeper"},
		{"tampered signature", tampered, apperr.KindInvalid, "does not verify"},
		{"detached signature", sign(t, xmlPlain, true), apperr.KindInvalid, "detached"},
		{"bad CMS", []byte{0x30, 0x03, 0x02, 0x01, 0x01}, apperr.KindInvalid, "not valid CMS"},
		{"mdm payload", customProfile(t, plist.XMLFormat, payloadDict("com.apple.mdm", "com.example.custom.mdm", "2B3C4D5E-6F70-4182-93A4-B5C6D7E8F901", "ServerURL", "https://evil.example")), apperr.KindInvalid, "com.apple.mdm is not allowed"},
		{"duplicate identifier", customProfile(t, plist.XMLFormat, restrictionsPayload,
			payloadDict("com.apple.webClip.managed", "com.example.custom.r", "3C4D5E6F-7081-4293-A4B5-C6D7E8F90A1B")), apperr.KindInvalid, "PayloadIdentifier repeats"},
		{"duplicate uuid", customProfile(t, plist.XMLFormat, restrictionsPayload,
			payloadDict("com.apple.webClip.managed", "com.example.custom.w2", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f1")), apperr.KindInvalid, "PayloadUUID repeats"},
		{"payload missing uuid", customProfile(t, plist.XMLFormat, payloadDict("com.apple.webClip.managed", "com.example.custom.w", "")), apperr.KindInvalid, "payload 0: PayloadUUID"},
		{"payload version 2", customProfile(t, plist.XMLFormat, payloadDict("com.apple.webClip.managed", "com.example.custom.w", "4D5E6F70-8192-43A4-B5C6-D7E8F90A1B2C", "PayloadVersion", 2)), apperr.KindInvalid, "PayloadVersion must be the integer 1"},
		{"not configuration", withTop("PayloadType", "com.apple.wifi.managed"), apperr.KindInvalid, `"Configuration"`},
		{"missing identifier", withTop("PayloadIdentifier", nil), apperr.KindInvalid, "PayloadIdentifier is missing"},
		{"version as string", withTop("PayloadVersion", "1"), apperr.KindInvalid, "PayloadVersion"},
		{"no payloads", withTop("PayloadContent", []any{}), apperr.KindInvalid, "no payloads"},
		{"content not array", withTop("PayloadContent", "x"), apperr.KindInvalid, "must be an array"},
		{"encrypted", withTop("EncryptedPayloadContent", []byte{1, 2, 3}), apperr.KindInvalid, "encrypted profiles"},
		{"reserved identifier", withTop("PayloadIdentifier", "com.example.steward.enrolment"), apperr.KindInvalid, "reserved"},
		{"under reserved identifier", withTop("PayloadIdentifier", "com.example.steward.enrolment.x"), apperr.KindInvalid, "reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ValidateCustom(c.input, "com.example.steward.enrolment")
			if err == nil {
				t.Fatal("accepted")
			}
			e := apperr.As(err)
			if e.Kind != c.kind || !strings.Contains(e.Message, c.inText) {
				t.Errorf("got %s %q, want %s containing %q", e.Kind, e.Message, c.kind, c.inText)
			}
			if strings.Contains(err.Error(), "secret-pass") {
				t.Error("error echoes a secret")
			}
		})
	}
}

// TestReservedIgnoresCase: an identifier is reserved when it equals a root
// or lies under it, whatever its case; a root is not a mere prefix.
func TestReservedIgnoresCase(t *testing.T) {
	const root = "org.steward.enrolment"
	for id, want := range map[string]bool{
		"org.steward.enrolment":             true,
		"org.steward.enrolment.01HZ":        true,
		"ORG.STEWARD.ENROLMENT.01HZ":        true,
		"Org.Steward.Enrolment":             true,
		"org.steward.enrolments.x":          false,
		"org.steward":                       false,
		"com.example.org.steward.enrolment": false,
		"":                                  false,
	} {
		if got := Reserved(id, "", root); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", id, got, want)
		}
	}
	if Reserved("org.steward.enrolment.x") {
		t.Error("an identifier is reserved under no root")
	}
}

func TestValidateCustomBoundsExpansion(t *testing.T) {
	// Object k is an array holding object k-1 twice: 40 objects describe a
	// tree of 2^40 values.
	bomb := binaryPlist(40, func(k int) []byte {
		if k == 0 {
			return []byte{0x54, 'l', 'e', 'a', 'f'} // ASCII string "leaf"
		}
		return []byte{0xA2, byte(k - 1), byte(k - 1)}
	})
	_, err := ValidateCustom(bomb)
	if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("err = %v", err)
	}
}

// TestValidateCustomDepthIgnoresHiddenTags: closing tags in a comment, a
// CDATA section or a directive are no closing tags to the decoder, so they
// must not hide nesting from the depth guard.
func TestValidateCustomDepthIgnoresHiddenTags(t *testing.T) {
	const deep = 40_000
	closes := strings.Repeat("</dict>", deep)
	for name, hidden := range map[string]string{
		"comment":   "<!--" + closes + "-->",
		"cdata":     "<![CDATA[" + closes + "]]>",
		"directive": "<!DOCTYPE plist [" + closes + "]>",
	} {
		t.Run(name, func(t *testing.T) {
			doc := `<?xml version="1.0" encoding="UTF-8"?>` + hidden + `<plist version="1.0"><dict><key>PayloadContent</key>` +
				strings.Repeat("<array>", deep) + strings.Repeat("</array>", deep) + `</dict></plist>`
			_, err := ValidateCustom([]byte(doc))
			if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "nests deeper") {
				t.Fatalf("a profile nested %d deep: err = %v, want the depth guard", deep, err)
			}
		})
	}
}

// binaryPlist assembles a bplist00 with one-byte object references; the
// last object is the top one.
func binaryPlist(count int, object func(k int) []byte) []byte {
	out := []byte("bplist00")
	offsets := make([]int, count)
	for k := 0; k < count; k++ {
		offsets[k] = len(out)
		out = append(out, object(k)...)
	}
	table := len(out)
	for _, off := range offsets {
		out = binary.BigEndian.AppendUint16(out, uint16(off))
	}
	trailer := make([]byte, 32)
	trailer[6], trailer[7] = 2, 1
	binary.BigEndian.PutUint64(trailer[8:], uint64(count))
	binary.BigEndian.PutUint64(trailer[16:], uint64(count-1))
	binary.BigEndian.PutUint64(trailer[24:], uint64(table))
	return append(out, trailer...)
}
