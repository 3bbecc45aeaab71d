package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func webClipDefinition(icon []byte) json.RawMessage {
	return json.RawMessage(`{"name":"Intranet","identifier":"org.alpha.clip","payloads":[{"type":"webclip","webclip":{"label":"Intranet","url":"https://intranet.alpha.test","icon":"` +
		base64.StdEncoding.EncodeToString(icon) + `"}}]}`)
}

// TestProfileRoutesTakeTheirDocumentedSizes: a profile may carry a web clip
// icon of up to 256 KiB (and PKCS#12 files, or be a 1 MiB upload), base64
// in JSON, so its routes accept more than the 64 KiB of other routes; up to
// their own limit only.
func TestProfileRoutesTakeTheirDocumentedSizes(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.customer("Alpha Customer")
	_, secret := e.admin(a.ID, "alice@alpha.test", "owner")
	path := "/api/v1/tenants/" + a.ID + "/profiles"
	icon := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100<<10)...)

	var created ProfileView
	e.must(201, secret, "POST", path, device.ProfileInput{Name: "Clip", Definition: webClipDefinition(icon)}, &created)
	icon[len(icon)-1] = 1
	e.must(200, secret, "PUT", path+"/"+created.ID, device.ProfileInput{Name: "Clip", Definition: webClipDefinition(icon)}, nil)

	for _, method := range []string{"POST", "PUT"} {
		target := path
		if method == "PUT" {
			target += "/" + created.ID
		}
		oversized := append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), MaxProfileBodyBytes)...), '"', '}')
		if r := e.do(secret, method, target, oversized); r.status != 413 || r.errorCode() != "payload_too_large" {
			t.Errorf("%s of %d bytes: status %d: %s", method, len(oversized), r.status, r.body)
		}
	}
	oversized := append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...), '"', '}')
	if r := e.do(secret, "POST", "/api/v1/tenants/"+a.ID+"/groups", oversized); r.status != 413 {
		t.Errorf("a group body of %d bytes: status %d, want the 64 KiB limit of other routes", len(oversized), r.status)
	}
}

// TestCreateProfileFromCopiedDefinition: a definition copied from the API
// carries {"set":true} markers with no stored secret behind them; that is
// the admin's input to fix (400 naming the field), not a server fault.
func TestCreateProfileFromCopiedDefinition(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.customer("Alpha Customer")
	_, secret := e.admin(a.ID, "alice@alpha.test", "owner")
	def := `{"name":"Copy","identifier":"org.alpha.wifi","payloads":[{"type":"wifi","wifi":{"ssid":"Alpha","security":"wpa2_personal","password":{"set":true}}}]}`
	r := e.do(secret, "POST", "/api/v1/tenants/"+a.ID+"/profiles", device.ProfileInput{Name: "Copy", Definition: json.RawMessage(def)})
	var body ErrorBody
	r.decode(t, &body)
	if r.status != 400 || body.Error.Details["field"] != "payloads[0].wifi.password" {
		t.Fatalf("status %d, want 400 naming payloads[0].wifi.password: %s", r.status, r.body)
	}
}

// TestBulkCommandTakesItsDocumentedDevices: a bulk command names up to
// MaxBulkDevices devices in one request, which the 64 KiB of other routes
// would cut to some 1,600; its own limit still holds.
func TestBulkCommandTakesItsDocumentedDevices(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t))
	a := e.customer("Alpha Customer")
	_, secret := e.admin(a.ID, "alice@alpha.test", "owner")
	path := "/api/v1/tenants/" + a.ID + "/commands"
	ids := make([]string, MaxBulkDevices)
	for i := range ids {
		ids[i] = store.NewID()
	}
	bulk := func(ids []string) BulkCommandRequest {
		return BulkCommandRequest{CommandRequest: CommandRequest{RequestType: "SecurityInfo"}, DeviceIDs: ids}
	}
	// None of them is enrolled: refused as for one of them, not for size.
	if r := e.do(secret, "POST", path, bulk(ids)); r.status == 413 || r.status/100 != 4 {
		t.Errorf("%d devices: status %d: %.200s", len(ids), r.status, r.body)
	}
	if r := e.do(secret, "POST", path, bulk(append(ids, store.NewID()))); r.status != 400 {
		t.Errorf("%d devices: status %d: %.200s; want 400", len(ids)+1, r.status, r.body)
	}
	oversized := append(append([]byte(`{"request_type":"`), bytes.Repeat([]byte("a"), MaxBulkCommandBodyBytes)...), '"', '}')
	if r := e.do(secret, "POST", path, oversized); r.status != 413 {
		t.Errorf("a bulk command of %d bytes: status %d", len(oversized), r.status)
	}
}
