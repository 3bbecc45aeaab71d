package mdm

import (
	"encoding/json"
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
