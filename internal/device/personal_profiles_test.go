package device_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// proxyProfile routes a network's traffic and a VPN's through an
// admin-chosen proxy, in payload types personally owned devices take.
const proxyProfile = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.proxy</string><key>PayloadUUID</key><string>11111111-1111-1111-1111-111111111111</string>
<key>PayloadContent</key><array>
 <dict><key>PayloadType</key><string>com.apple.wifi.managed</string><key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>com.example.proxy.wifi</string><key>PayloadUUID</key><string>22222222-2222-2222-2222-222222222222</string>
  <key>SSID_STR</key><string>Home</string><key>EncryptionType</key><string>Any</string>
  <key>ProxyType</key><string>Manual</string><key>ProxyServer</key><string>proxy.corp.example</string><key>ProxyServerPort</key><integer>3128</integer></dict>
 <dict><key>PayloadType</key><string>com.apple.vpn.managed</string><key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>com.example.proxy.vpn</string><key>PayloadUUID</key><string>33333333-3333-3333-3333-333333333333</string>
  <key>VPNType</key><string>IKEv2</string><key>UserDefinedName</key><string>x</string>
  <key>Proxies</key><dict><key>HTTPEnable</key><integer>1</integer><key>HTTPProxy</key><string>proxy.corp.example</string><key>HTTPPort</key><integer>3128</integer></dict></dict>
</array></dict></plist>`

// enrolled registers an enrolled device of the managed tenant.
func (m *managed) enrolled(ownership privacy.Ownership, platform string) string {
	m.t.Helper()
	d, err := m.priv.RegisterDevice(m.ctx, m.tenant, privacy.DeviceInput{Ownership: string(ownership), Platform: platform}, admin)
	if err != nil {
		m.t.Fatal(err)
	}
	d.State, d.EnrolledAt = store.DeviceEnrolled, m.now
	m.tx(func(q store.Queries) error { return q.Devices().Update(m.ctx, d) })
	return d.ID
}

// deployed assigns a new profile to a static group of devices and returns
// its state on each.
func (m *managed) deployed(in device.ProfileInput, devices ...string) []store.DeviceProfile {
	m.t.Helper()
	p, err := m.fleet.Devices.CreateProfile(m.ctx, m.tenant, in, admin)
	if err != nil {
		m.t.Fatal(err)
	}
	g, err := m.fleet.Devices.CreateGroup(m.ctx, m.tenant, device.GroupInput{Name: "g " + p.ID, Kind: store.GroupStatic}, admin)
	if err != nil {
		m.t.Fatal(err)
	}
	if _, _, err := m.fleet.Devices.ChangeMembers(m.ctx, m.tenant, g.ID, devices, nil, admin); err != nil {
		m.t.Fatal(err)
	}
	if err := m.fleet.Devices.AssignProfile(m.ctx, m.tenant, p.ID, g.ID, true, admin); err != nil {
		m.t.Fatal(err)
	}
	var out []store.DeviceProfile
	for _, id := range devices {
		s, err := m.st.Read().DeviceProfiles().Get(m.ctx, m.tenant, id, p.ID)
		if err != nil {
			m.t.Fatalf("state on %s: %v", id, err)
		}
		out = append(out, s)
	}
	return out
}

func definition(t *testing.T, identifier string, payload map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{"name": "P", "identifier": identifier, "payloads": []any{payload}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProxiesAndForcedTunnelsStayOffPersonalDevices: Wi-Fi and VPN
// payloads are allowed on personally owned devices, but not one that sends
// the employee's own traffic through a proxy or a VPN that connects by
// itself; a corporate phone takes them all.
func TestProxiesAndForcedTunnelsStayOffPersonalDevices(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		m := newManaged(t, st)
		personal := m.enrolled(privacy.Personal, "ios")
		userEnrolled := m.enrolled(privacy.UserEnrolled, "ios")
		wifi := map[string]any{"ssid": "Work", "security": "wpa2_personal", "password": "correct horse battery"}
		proxied := map[string]any{"ssid": "Work", "security": "wpa2_personal", "password": "correct horse battery",
			"proxy": map[string]any{"type": "auto", "pac_url": "https://pac.example.com/p.pac"}}
		vpn := map[string]any{"name": "Work", "remote_address": "vpn.example.com", "remote_identifier": "vpn.example.com",
			"local_identifier": "phone", "auth": "shared_secret", "shared_secret": "0123456789abcdef0123", "on_demand": true}

		refused := []struct {
			name string
			in   device.ProfileInput
			why  string
		}{
			{"reviewer's upload", device.ProfileInput{Name: "Proxy", Custom: []byte(proxyProfile)}, "ProxyType Manual"},
			{"built Wi-Fi with a PAC proxy", device.ProfileInput{Name: "Proxy Wi-Fi",
				Definition: definition(t, "com.example.wifi.proxy", map[string]any{"type": "wifi", "wifi": proxied})}, "ProxyType Auto"},
			{"built VPN on demand", device.ProfileInput{Name: "VPN",
				Definition: definition(t, "com.example.vpn", map[string]any{"type": "vpn", "vpn": vpn})}, "Action Connect"},
		}
		for _, c := range refused {
			states := m.deployed(c.in, m.phone, personal)
			if s := states[0]; s.Status != store.ProfilePending {
				t.Errorf("%s on the corporate phone: %+v; want it sent", c.name, s)
			}
			if s := states[1]; s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, c.why) ||
				!strings.Contains(s.Error, "personally owned") {
				t.Errorf("%s on the personal phone: %+v; want not_applicable naming %q", c.name, s, c.why)
			}
		}

		states := m.deployed(device.ProfileInput{Name: "Wi-Fi", Definition: definition(t, "com.example.wifi", map[string]any{"type": "wifi", "wifi": wifi})},
			m.phone, personal, userEnrolled)
		for i, s := range states {
			if s.Status != store.ProfilePending {
				t.Errorf("plain Wi-Fi on device %d: %+v; want it sent", i, s)
			}
		}
		// A User Enrollment is personally owned too: the proxy keeps it off.
		states = m.deployed(device.ProfileInput{Name: "Proxy Wi-Fi 2",
			Definition: definition(t, "com.example.wifi.proxy2", map[string]any{"type": "wifi", "wifi": proxied})}, userEnrolled)
		if s := states[0]; s.Status != store.ProfileNotApplicable || !strings.Contains(s.Error, "ProxyType Auto") {
			t.Errorf("Wi-Fi with a PAC proxy under User Enrollment: %+v", s)
		}
	})
}
