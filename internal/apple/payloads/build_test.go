package payloads

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
)

func TestBuildEmitsAppleKeys(t *testing.T) {
	d := mustParse(t, fullDefinition(t))
	out, err := d.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	top := decodeBuilt(t, out)
	wantTop := map[string]any{
		"PayloadType": "Configuration", "PayloadVersion": uint64(1), "PayloadIdentifier": "com.example.corp",
		"PayloadDisplayName": "Corporate", "PayloadDescription": "Network and mail", "PayloadOrganization": "Example Ltd",
		"PayloadScope": "System",
	}
	assertKeys(t, "profile", top, wantTop)
	if _, ok := top["PayloadRemovalDisallowed"]; ok {
		t.Error("PayloadRemovalDisallowed written while false; a User Enrollment refuses the key")
	}

	payloads := payloadsOf(t, top)
	if len(payloads) != len(d.Payloads) {
		t.Fatalf("built %d payloads, want %d", len(payloads), len(d.Payloads))
	}
	uuidPattern := regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	seen := map[string]bool{top["PayloadUUID"].(string): true}
	for i, p := range payloads {
		id := p["PayloadUUID"].(string)
		if !uuidPattern.MatchString(id) || seen[id] {
			t.Errorf("payload %d UUID %q is not a fresh upper-case version 5 UUID", i, id)
		}
		seen[id] = true
		if p["PayloadVersion"] != uint64(1) {
			t.Errorf("payload %d PayloadVersion = %v", i, p["PayloadVersion"])
		}
	}
	scepUUID, p12UUID := payloads[0]["PayloadUUID"], payloads[3]["PayloadUUID"]

	cases := []struct {
		index int
		want  map[string]any
	}{
		{0, map[string]any{
			"PayloadType": "com.apple.security.scep", "PayloadIdentifier": "com.example.corp.scep.0", "PayloadDisplayName": "SCEP certificate",
			"PayloadContent": map[string]any{
				"URL": "https://ca.example.com/scep", "Name": "ExampleCA", "Challenge": "scep-challenge",
				"Keysize": uint64(2048), "Key Type": "RSA", "Key Usage": uint64(5), "KeyIsExtractable": false,
				"Subject": []any{[]any{[]any{"CN", "device"}}, []any{[]any{"O", "Example"}}, []any{[]any{"1.2.840.113549.1.9.1", "it@example.com"}}},
			},
		}},
		{1, map[string]any{
			"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": "com.example.corp.wifi.1",
			"SSID_STR": "Corp", "HIDDEN_NETWORK": false, "AutoJoin": true, "EncryptionType": "WPA2",
			"PayloadCertificateUUID": scepUUID,
			"EAPClientConfiguration": map[string]any{"AcceptEAPTypes": []any{uint64(13)}, "TLSTrustedServerNames": []any{"radius.example.com"}},
		}},
		{2, map[string]any{
			"SSID_STR": "Guest", "HIDDEN_NETWORK": true, "AutoJoin": false, "EncryptionType": "WPA3",
			"Password": "guest-passphrase", "ProxyType": "Auto", "ProxyPACURL": "https://proxy.example.com/proxy.pac",
		}},
		{3, map[string]any{
			"PayloadType": "com.apple.security.pkcs12", "Password": "p12-pass", "PayloadCertificateFileName": "vpn.p12", "KeyIsExtractable": false,
		}},
		{4, map[string]any{
			"PayloadType": "com.apple.vpn.managed", "PayloadDisplayName": "Corp VPN", "VPNType": "IKEv2", "UserDefinedName": "Corp VPN",
			"IKEv2": map[string]any{
				"RemoteAddress": "vpn.example.com", "RemoteIdentifier": "vpn.example.com", "LocalIdentifier": "device",
				"AuthenticationMethod": "Certificate", "PayloadCertificateUUID": p12UUID, "CertificateType": "ECDSA256",
				"EnablePFS": uint64(1), "DeadPeerDetectionRate": "Medium",
				"OnDemandEnabled": uint64(1), "OnDemandRules": []any{map[string]any{"Action": "Connect"}},
				"IKESecurityAssociationParameters":   map[string]any{"EncryptionAlgorithm": "AES-256-GCM", "IntegrityAlgorithm": "SHA2-256", "DiffieHellmanGroup": uint64(19)},
				"ChildSecurityAssociationParameters": map[string]any{"EncryptionAlgorithm": "AES-256-GCM", "IntegrityAlgorithm": "SHA2-256", "DiffieHellmanGroup": uint64(19)},
			},
		}},
		{5, map[string]any{
			"IKEv2": map[string]any{
				"RemoteAddress": "192.0.2.10", "RemoteIdentifier": "lab", "LocalIdentifier": "lab-client", "AuthenticationMethod": "SharedSecret", "SharedSecret": "a-long-shared-secret",
				"EnablePFS": uint64(1), "DeadPeerDetectionRate": "Medium",
				"IKESecurityAssociationParameters":   map[string]any{"EncryptionAlgorithm": "AES-128-GCM", "IntegrityAlgorithm": "SHA2-384", "DiffieHellmanGroup": uint64(20)},
				"ChildSecurityAssociationParameters": map[string]any{"EncryptionAlgorithm": "AES-128-GCM", "IntegrityAlgorithm": "SHA2-384", "DiffieHellmanGroup": uint64(20)},
			},
		}},
		{6, map[string]any{
			"PayloadType": "com.apple.eas.account", "EmailAddress": "user@example.com", "Host": "mail.example.com", "SSL": true,
			"UserName": "user", "Password": "eas-pass", "MailNumberOfPastDaysToSync": uint64(7), "PreventMove": false, "PreventAppSheet": false,
		}},
		{7, map[string]any{
			"PayloadType": "com.apple.mail.managed", "EmailAccountType": "EmailTypeIMAP", "EmailAccountDescription": "Work mail",
			"EmailAddress": "user@example.com", "IncomingMailServerHostName": "imap.example.com", "IncomingMailServerPortNumber": uint64(993),
			"IncomingMailServerUseSSL": true, "IncomingMailServerUsername": "user", "IncomingPassword": "imap-pass",
			"IncomingMailServerAuthentication": "EmailAuthPassword", "OutgoingMailServerHostName": "smtp.example.com",
			"OutgoingMailServerPortNumber": uint64(465), "OutgoingMailServerUseSSL": true, "OutgoingMailServerUsername": "user",
			"OutgoingMailServerAuthentication": "EmailAuthPassword", "OutgoingPasswordSameAsIncomingPassword": true,
			"OutgoingPassword": "imap-pass",
		}},
		{8, map[string]any{
			"PayloadType": "com.apple.mobiledevice.passwordpolicy", "minLength": uint64(6), "allowSimple": false, "maxFailedAttempts": uint64(10),
		}},
		{9, map[string]any{
			"PayloadType": "com.apple.applicationaccess", "allowCamera": false, "allowOpenFromManagedToUnmanaged": false, "allowManagedAppsCloudSync": true,
		}},
		{10, map[string]any{
			"PayloadType": "com.apple.webClip.managed", "PayloadIdentifier": "com.example.corp.webclip.10",
			"Label": "Intranet", "URL": "https://intranet.example.com", "IsRemovable": true, "FullScreen": true, "Icon": testIcon,
		}},
	}
	for _, c := range cases {
		assertKeys(t, "payload "+string(d.Payloads[c.index].Type), payloads[c.index], c.want)
	}
	if _, ok := payloads[3]["PayloadContent"].([]byte); !ok {
		t.Errorf("pkcs12 PayloadContent is %T, want data", payloads[3]["PayloadContent"])
	}
	// Only the keys an admin set are emitted for policy payloads.
	for _, idx := range []int{8, 9} {
		if n := len(payloads[idx]) - 5; n != len(cases[idx].want)-1 {
			t.Errorf("payload %d has %d policy keys, want %d: %v", idx, n, len(cases[idx].want)-1, payloads[idx])
		}
	}
	for _, absent := range []string{"Password", "ProxyType"} {
		if _, ok := payloads[1][absent]; ok {
			t.Errorf("enterprise Wi-Fi has %s", absent)
		}
	}
}

func assertKeys(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: key %q missing", what, k)
			continue
		}
		if wm, isMap := w.(map[string]any); isMap {
			gm, ok := g.(map[string]any)
			if !ok {
				t.Errorf("%s: key %q is %T, want dict", what, k, g)
				continue
			}
			assertKeys(t, what+"."+k, gm, wm)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: key %q = %#v, want %#v", what, k, g, w)
		}
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	def := fullDefinition(t)
	first, err := mustParse(t, def).Build()
	if err != nil {
		t.Fatal(err)
	}
	again, err := mustParse(t, def).Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("building the same definition twice gave different bytes")
	}
	baseTop := decodeBuilt(t, first)
	base := payloadsOf(t, baseTop)

	setPath(def, []any{"payloads", 2, "wifi", "ssid"}, "Guest-2")
	changed, err := mustParse(t, def).Build()
	if err != nil {
		t.Fatal(err)
	}
	top := decodeBuilt(t, changed)
	after := payloadsOf(t, top)
	if top["PayloadUUID"] == baseTop["PayloadUUID"] {
		t.Error("profile UUID unchanged after a content change")
	}
	if after[2]["PayloadUUID"] == base[2]["PayloadUUID"] {
		t.Error("changed payload kept its UUID")
	}
	if after[0]["PayloadUUID"] != base[0]["PayloadUUID"] {
		t.Error("an unchanged payload got a new UUID")
	}
}

func TestBuildRefusesWithheldSecrets(t *testing.T) {
	public, _ := mustParse(t, fullDefinition(t)).SplitSecrets()
	_, err := public.Build()
	if !errors.Is(err, ErrSecretsMissing) {
		t.Fatalf("Build of split definition: err = %v, want ErrSecretsMissing", err)
	}
	// A copied (redacted) definition is the admin's input: a 400 naming the
	// field, not an internal error.
	if e := apperr.As(err); e.Kind != apperr.KindInvalid || e.Details["field"] != "payloads[0].scep.challenge" {
		t.Errorf("err = %v (details %v), want invalid_request naming payloads[0].scep.challenge", err, e.Details)
	}
}

func TestBuildScopeAndRemoval(t *testing.T) {
	def := fullDefinition(t)
	def["scope"] = "User"
	def["removal_disallowed"] = true
	out, err := mustParse(t, def).Build()
	if err != nil {
		t.Fatal(err)
	}
	assertKeys(t, "profile", decodeBuilt(t, out), map[string]any{"PayloadScope": "User", "PayloadRemovalDisallowed": true})
}
