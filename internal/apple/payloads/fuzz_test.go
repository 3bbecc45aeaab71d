package payloads

import (
	"bytes"
	"errors"
	"testing"

	"howett.net/plist"
)

func FuzzParseDefinition(f *testing.F) {
	full := fullDefinition(f)
	f.Add(mustJSON(f, full))
	f.Add(mustJSON(f, mustParse(f, full).Redacted()))
	f.Add([]byte(`{"name":"x","identifier":"com.example.x","payloads":[{"type":"passcode","passcode":{"min_length":4}}]}`))
	f.Add([]byte(`{"name":"x","identifier":"com.example.x","payloads":[{"type":"wifi","wifi":{"ssid":"a","security":"wpa2_personal","password":{"set":true}}}]}`))
	f.Add([]byte(`{"name":"x","identifier":"com.example.x","payloads":[{"type":"pkcs12","pkcs12":{"data":"!!","password":null}}]}`))
	f.Add([]byte(`{"payloads":[{"type":"wifi","wifi":null,"vpn":{}}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"name":"\u0000"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDefinition(data)
		if err != nil {
			return
		}
		built, err := d.Build()
		if errors.Is(err, ErrSecretsMissing) {
			return
		}
		if err != nil {
			t.Fatalf("valid definition does not build: %v", err)
		}
		public, secrets := d.SplitSecrets()
		restored, err := public.WithSecrets(secrets)
		if err != nil {
			t.Fatalf("WithSecrets after SplitSecrets: %v", err)
		}
		again, err := restored.Build()
		if err != nil || !bytes.Equal(built, again) {
			t.Fatalf("split/restore changed the build (err %v)", err)
		}
		if _, err := ValidateCustom(built); err != nil {
			t.Fatalf("Steward's own build fails ValidateCustom: %v", err)
		}
	})
}

func FuzzValidateCustom(f *testing.F) {
	xmlPlain := customProfile(f, plist.XMLFormat, restrictionsPayload, wifiWithPassword)
	f.Add(xmlPlain)
	f.Add(customProfile(f, plist.BinaryFormat, restrictionsPayload))
	f.Add(sign(f, xmlPlain, false))
	f.Add(sign(f, xmlPlain, true))
	f.Add(binaryPlist(3, func(k int) []byte {
		if k == 0 {
			return []byte{0x10, 0x01}
		}
		return []byte{0xA2, byte(k - 1), byte(k - 1)}
	}))
	f.Add([]byte("bplist00"))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09})
	f.Add([]byte(`<plist><dict><key>PayloadContent</key><array><string>x</string></array></dict></plist>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		prof, err := ValidateCustom(data, "com.example.steward")
		if err != nil {
			return
		}
		if prof.Identifier == "" || len(prof.PayloadTypes) == 0 {
			t.Fatalf("accepted profile without identifier or payloads: %+v", prof)
		}
		id, err := ProfileIdentifier(data)
		if err != nil || id != prof.Identifier {
			t.Fatalf("ProfileIdentifier = %q, %v; want %q", id, err, prof.Identifier)
		}
	})
}
