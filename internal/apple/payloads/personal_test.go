package payloads

import (
	"strings"
	"testing"

	"howett.net/plist"
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

func wifiPayload(keys map[string]any) map[string]any {
	p := map[string]any{"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": "com.example.p.wifi",
		"PayloadUUID": "22222222-2222-2222-2222-222222222222", "PayloadVersion": 1, "SSID_STR": "Work", "EncryptionType": "WPA2"}
	for k, v := range keys {
		p[k] = v
	}
	return p
}

func vpnPayload(keys map[string]any) map[string]any {
	p := map[string]any{"PayloadType": "com.apple.vpn.managed", "PayloadIdentifier": "com.example.p.vpn",
		"PayloadUUID": "33333333-3333-3333-3333-333333333333", "PayloadVersion": 1, "VPNType": "IKEv2", "UserDefinedName": "Work"}
	for k, v := range keys {
		p[k] = v
	}
	return p
}

func ikev2(keys map[string]any) map[string]any {
	d := map[string]any{"RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com", "LocalIdentifier": "phone",
		"AuthenticationMethod": "Certificate"}
	for k, v := range keys {
		d[k] = v
	}
	return d
}

// onDemand is a custom IKEv2 profile that connects on demand by keys.
func onDemand(t *testing.T, keys map[string]any) []byte {
	t.Helper()
	keys["OnDemandEnabled"] = 1
	return customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(keys)}))
}

func TestPersonalRefusalRefusesTrafficRouting(t *testing.T) {
	connectAlways := []any{map[string]any{"Action": "Connect"}}
	cases := []struct {
		name    string
		profile []byte
		want    string
	}{
		{"reviewer's Wi-Fi and VPN proxies", []byte(proxyProfile), "ProxyType Manual"},
		{"Wi-Fi proxy by PAC", customProfile(t, plist.XMLFormat, wifiPayload(map[string]any{"ProxyType": "Auto", "ProxyPACURL": "https://pac.example.com/p.pac"})), "ProxyType Auto"},
		{"Wi-Fi proxy server without a type", customProfile(t, plist.BinaryFormat, wifiPayload(map[string]any{"ProxyServer": "proxy.example.com"})), "ProxyServer"},
		{"VPN proxies", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"Proxies": map[string]any{"ProxyAutoConfigEnable": 1,
			"ProxyAutoConfigURLString": "https://pac.example.com/p.pac"}})), "Proxies"},
		{"transparent proxy", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"VPNType": "TransparentProxy"})), "transparent proxy"},
		{"always-on VPN", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"VPNType": "AlwaysOn"})), "always-on"},
		{"IncludeAllNetworks", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"IncludeAllNetworks": 1})})), "IncludeAllNetworks"},
		{"on demand, connect always", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 1,
			"OnDemandRules": connectAlways})})), "Action Connect"},
		{"on demand as <true/>, connect on Wi-Fi", customProfile(t, plist.BinaryFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": true,
			"OnDemandRules": []any{map[string]any{"Action": "Disconnect", "InterfaceTypeMatch": "Cellular"},
				map[string]any{"Action": "Connect", "InterfaceTypeMatch": "WiFi"}}})})), "Action Connect"},
		{"on demand for every domain", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 1,
			"OnDemandRules": []any{map[string]any{"Action": "EvaluateConnection", "ActionParameters": []any{
				map[string]any{"Domains": []any{"*"}, "DomainAction": "ConnectIfNeeded"}}}}})})), "without named domains"},
		{"on demand without rules", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 1})})), "without rules"},
		{"deprecated list matching every host", onDemand(t, map[string]any{"OnDemandMatchDomainsAlways": []any{"*"}}), "without rules or named"},
		{"deprecated lists, one matching every host", onDemand(t, map[string]any{"OnDemandMatchDomainsAlways": []any{"corp.example.com"},
			"OnDemandMatchDomainsOnRetry": []any{"*"}}), "without rules or named"},
		{"Allow by a list matching every host", onDemand(t, map[string]any{"OnDemandMatchDomainsAlways": []any{"*"},
			"OnDemandRules": []any{map[string]any{"Action": "Allow"}}}), "Action Allow"},
		{"Allow by an empty name", onDemand(t, map[string]any{"OnDemandMatchDomainsOnRetry": []any{""},
			"OnDemandRules": []any{map[string]any{"Action": "Allow"}}}), "Action Allow"},
		{"Allow without lists", onDemand(t, map[string]any{"OnDemandRules": []any{map[string]any{"Action": "Allow"}}}), "Action Allow"},
		{"Allow by top-level domains", onDemand(t, map[string]any{"OnDemandMatchDomainsAlways": []any{"corp.example.com", "*.com"},
			"OnDemandRules": []any{map[string]any{"Action": "Allow"}}}), "Action Allow"},
		{"EvaluateConnection for top-level domains", onDemand(t, map[string]any{"OnDemandRules": []any{map[string]any{"Action": "EvaluateConnection",
			"ActionParameters": []any{map[string]any{"Domains": []any{"com", "net", "org"}, "DomainAction": "ConnectIfNeeded"}}}}}), "without named domains"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ValidateCustom(c.profile); err != nil {
				t.Fatalf("the test profile does not validate: %v", err)
			}
			why, err := PersonalRefusal(c.profile)
			if err != nil || !strings.Contains(why, c.want) || !strings.Contains(why, "personally owned") {
				t.Errorf("PersonalRefusal = %q, %v; want a refusal naming %q", why, err, c.want)
			}
		})
	}
}

func TestPersonalRefusalKeepsWorkAccess(t *testing.T) {
	cases := []struct {
		name    string
		profile []byte
	}{
		{"Wi-Fi without a proxy", customProfile(t, plist.XMLFormat, wifiPayload(map[string]any{"ProxyType": "None"}))},
		{"VPN the employee connects", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(nil)}))},
		{"on demand for work domains", customProfile(t, plist.BinaryFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 1,
			"OnDemandRules": []any{
				map[string]any{"Action": "EvaluateConnection", "ActionParameters": []any{
					map[string]any{"Domains": []any{"intranet.example.com", "*.corp.example.com"}, "DomainAction": "ConnectIfNeeded"}}},
				map[string]any{"Action": "Ignore"}}})}))},
		{"on demand by the deprecated domain list", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 1,
			"OnDemandMatchDomainsAlways": []any{"corp.example.com"}})}))},
		{"Allow by the deprecated domain lists", onDemand(t, map[string]any{"OnDemandMatchDomainsAlways": []any{"*.corp.example.com"},
			"OnDemandMatchDomainsOnRetry": []any{}, "OnDemandRules": []any{map[string]any{"Action": "Allow"}}})},
		{"on demand switched off", customProfile(t, plist.XMLFormat, vpnPayload(map[string]any{"IKEv2": ikev2(map[string]any{"OnDemandEnabled": 0,
			"OnDemandRules": []any{map[string]any{"Action": "Connect"}}})}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if why, err := PersonalRefusal(c.profile); err != nil || why != "" {
				t.Errorf("PersonalRefusal = %q, %v; want none", why, err)
			}
		})
	}
}

// Built definitions are judged by what they build: a Wi-Fi proxy by PAC
// and an on-demand VPN (which Steward builds as connect always).
func TestPersonalRefusalOfBuiltDefinitions(t *testing.T) {
	vpn := map[string]any{"name": "Work", "remote_address": "vpn.example.com", "remote_identifier": "vpn.example.com",
		"local_identifier": "phone", "auth": "shared_secret", "shared_secret": "0123456789abcdef0123"}
	onDemand := map[string]any{}
	for k, v := range vpn {
		onDemand[k] = v
	}
	onDemand["on_demand"] = true
	wifi := map[string]any{"ssid": "Work", "security": "wpa2_personal", "password": "correct horse battery"}
	proxied := map[string]any{"ssid": "Work", "security": "wpa2_personal", "password": "correct horse battery",
		"proxy": map[string]any{"type": "auto", "pac_url": "https://pac.example.com/p.pac"}}
	unproxied := map[string]any{"ssid": "Work", "security": "wpa2_personal", "password": "correct horse battery",
		"proxy": map[string]any{"type": "none"}}
	cases := []struct {
		name    string
		payload map[string]any
		refused bool
	}{
		{"wifi", map[string]any{"type": "wifi", "wifi": wifi}, false},
		{"wifi", map[string]any{"type": "wifi", "wifi": unproxied}, false},
		{"wifi", map[string]any{"type": "wifi", "wifi": proxied}, true},
		{"vpn", map[string]any{"type": "vpn", "vpn": vpn}, false},
		{"vpn", map[string]any{"type": "vpn", "vpn": onDemand}, true},
	}
	for i, c := range cases {
		def := mustParse(t, map[string]any{"name": "P", "identifier": "com.example.p", "payloads": []any{c.payload}})
		built, err := def.Build()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		why, err := PersonalRefusal(built)
		if err != nil || (why != "") != c.refused {
			t.Errorf("case %d (%s): PersonalRefusal = %q, %v; want refused %v", i, c.name, why, err, c.refused)
		}
	}
}

func TestPersonalRefusalOfUnreadableData(t *testing.T) {
	if _, err := PersonalRefusal([]byte("not a profile")); err == nil {
		t.Error("no error for data that is not a profile")
	}
}
