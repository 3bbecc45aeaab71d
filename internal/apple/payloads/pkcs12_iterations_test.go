package payloads

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/steward-mdm/steward/internal/apperr"
)

// withMACIterations rewrites the MAC iteration count of a PKCS#12 file. The
// MAC no longer verifies, but a decoder pays for the iterations first.
func withMACIterations(t *testing.T, p12 []byte, n int) []byte {
	t.Helper()
	var pfx pfxPDU
	if _, err := asn1.Unmarshal(p12, &pfx); err != nil {
		t.Fatal(err)
	}
	pfx.MacData.Iterations = n
	out, err := asn1.Marshal(pfx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPKCS12IterationsCapped: a file asking for 20 million MAC iterations
// (seconds of CPU; 2^31 would be minutes) is refused before it is decoded,
// by ParseDefinition and by Build alike.
func TestPKCS12IterationsCapped(t *testing.T) {
	p12 := withMACIterations(t, newP12(t, "p12-pass", time.Now().Add(time.Hour)), 20_000_000)
	def := fullDefinition(t)
	setPath(def, []any{"payloads", 3, "pkcs12", "data"}, base64.StdEncoding.EncodeToString(p12))
	_, err := ParseDefinition(mustJSON(t, def))
	e := apperr.As(err)
	if e.Kind != apperr.KindInvalid || e.Details["field"] != "payloads[3].pkcs12.data" ||
		!strings.Contains(e.Message, "MAC asks for 20000000 key-derivation iterations") {
		t.Fatalf("err = %v, want invalid_request on payloads[3].pkcs12.data naming the MAC's iterations", err)
	}

	d := Definition{Name: "Identity", Identifier: "com.example.identity", Payloads: []Payload{
		{Type: KindPKCS12, PKCS12: &PKCS12{Data: NewSecretData(p12), Password: NewSecret("p12-pass")}},
	}}
	if _, err := d.Build(); !strings.Contains(apperr.As(err).Message, "key-derivation iterations") {
		t.Fatalf("Build: err = %v, want the iteration cap", err)
	}
}

// TestPKCS12IterationsEveryPart: each iteration count a decoder runs (the
// MAC, the encrypted certificate safe, the shrouded private key) is
// checked, for the legacy PBE ciphers, PBES2 and a PBMAC1 MAC.
func TestPKCS12IterationsEveryPart(t *testing.T) {
	cert, key := newIdentity(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	// 0x010101 iterations: cheap to encode, and a 3-byte INTEGER that can be
	// patched in place to 0x7fffff (8,388,607) without re-encoding lengths.
	const iterations = 0x010101
	found, patched := []byte{0x02, 0x03, 0x01, 0x01, 0x01}, []byte{0x02, 0x03, 0x7f, 0xff, 0xff}
	for name, enc := range map[string]*pkcs12.Encoder{
		"legacy DES": pkcs12.LegacyDES, "modern 2023": pkcs12.Modern2023, "modern 2026 (PBMAC1)": pkcs12.Modern2026,
	} {
		t.Run(name, func(t *testing.T) {
			p12, err := enc.WithIterations(iterations).Encode(key, cert, nil, "p12-pass")
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPKCS12Iterations(p12); err != nil {
				t.Fatalf("file with %d iterations refused: %v", iterations, err)
			}
			parts := map[string]bool{}
			for at := 0; ; at++ {
				i := bytes.Index(p12[at:], found)
				if i < 0 {
					break
				}
				at += i
				mutated := bytes.Clone(p12)
				copy(mutated[at:], patched)
				if tooMany, ok := checkPKCS12Iterations(mutated).(*tooManyIterationsError); ok {
					parts[tooMany.part] = true
				}
			}
			for _, part := range []string{"MAC", "encrypted certificate safe", "private key"} {
				if !parts[part] {
					t.Errorf("8,388,607 iterations for the %s pass the check (refused: %v)", part, parts)
				}
			}
		})
	}
}

// TestBuildDoesNotOpenPKCS12: Build runs on every delivery, inside
// transactions, so it leaves the slow opening of PKCS#12 files (password,
// dates) to the validation of the admin's input.
func TestBuildDoesNotOpenPKCS12(t *testing.T) {
	d := Definition{Name: "Identity", Identifier: "com.example.identity", Payloads: []Payload{
		{Type: KindPKCS12, PKCS12: &PKCS12{Data: NewSecretData(newP12(t, "p12-pass", time.Now().Add(time.Hour))), Password: NewSecret("other")}},
	}}
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("Validate: err = %v, want the wrong password refused", err)
	}
	if _, err := d.Build(); err != nil {
		t.Fatalf("Build opened the PKCS#12 file: %v", err)
	}
}

// TestCarriedCertificatesIterationsCapped: the certificates of a profile
// are read for device reports, so an identity over the cap is not opened
// even where its password is known (a custom upload, or a definition stored
// before the cap).
func TestCarriedCertificatesIterationsCapped(t *testing.T) {
	cert, key := newIdentity(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	p12, err := pkcs12.Modern2023.WithIterations(maxPKCS12Iterations+1).Encode(key, cert, nil, "p12-pass")
	if err != nil {
		t.Fatal(err)
	}
	d := Definition{Name: "Identity", Identifier: "com.example.identity", Payloads: []Payload{
		{Type: KindPKCS12, PKCS12: &PKCS12{Data: NewSecretData(p12), Password: NewSecret("p12-pass")}},
	}}
	if got := d.CarriedCertificates(); len(got) != 0 {
		t.Errorf("an identity asking for %d iterations was opened", maxPKCS12Iterations+1)
	}
}
