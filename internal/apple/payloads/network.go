package payloads

import (
	"net"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Wi-Fi security modes (WiFi.Security).
const (
	WPA2Personal   = "wpa2_personal"
	WPA3Personal   = "wpa3_personal"
	WPA2Enterprise = "wpa2_enterprise"
	WPA3Enterprise = "wpa3_enterprise"
)

// EAP methods (WiFiEAP.Method) and their AcceptEAPTypes numbers.
var eapTypes = map[string]int{"tls": 13, "ttls": 21, "peap": 25}

// WiFi configures com.apple.wifi.managed.
type WiFi struct {
	SSID     string     `json:"ssid"`
	Hidden   bool       `json:"hidden,omitempty"`
	AutoJoin *bool      `json:"auto_join,omitempty"` // default true
	Security string     `json:"security"`
	Password Secret     `json:"password,omitzero"` // personal modes: the passphrase
	EAP      *WiFiEAP   `json:"eap,omitempty"`     // enterprise modes
	Proxy    *WiFiProxy `json:"proxy,omitempty"`
}

// WiFiEAP is the 802.1X part of an enterprise network.
type WiFiEAP struct {
	Method string `json:"method"` // "tls", "peap" or "ttls"
	// Certificate is the id of the scep or pkcs12 payload holding the client
	// identity; required for "tls".
	Certificate string `json:"certificate,omitempty"`
	Username    string `json:"username,omitempty"` // peap/ttls
	Password    Secret `json:"password,omitzero"`  // peap/ttls; empty makes the device ask
	// TrustedServerNames are the RADIUS server certificate names the device
	// accepts. Required: without it the user is asked to trust whatever
	// server answers, which lets a rogue access point collect credentials.
	TrustedServerNames []string `json:"trusted_server_names"`
}

// WiFiProxy selects the network's proxy.
type WiFiProxy struct {
	Type   string `json:"type"`              // "none" or "auto"
	PACURL string `json:"pac_url,omitempty"` // https; for "auto"
}

var wpaHexKey = regexp.MustCompile(`^[0-9A-Fa-f]{64}$`)

func (w *WiFi) validate(v *validator, path string) error {
	if w.SSID == "" || len(w.SSID) > 32 || !utf8.ValidString(w.SSID) || hasControlChars(w.SSID, false) {
		return fieldErr(path+".ssid", "is required and must be at most 32 bytes of UTF-8 text without control characters")
	}
	switch w.Security {
	case WPA2Personal, WPA3Personal:
		if w.EAP != nil {
			return fieldErr(path+".eap", "applies only to the enterprise security modes; remove it or choose %s/%s", WPA2Enterprise, WPA3Enterprise)
		}
		if !w.Password.Withheld() {
			pw := w.Password.Reveal()
			if !(len(pw) >= 8 && len(pw) <= 63 || wpaHexKey.Match(pw)) || hasControlChars(string(pw), false) {
				return fieldErr(path+".password", "WPA passphrases are 8 to 63 printable characters (or 64 hexadecimal digits)")
			}
		}
	case WPA2Enterprise, WPA3Enterprise:
		if w.Password.IsSet() {
			return fieldErr(path+".password", "is for personal networks; put 802.1X credentials in eap")
		}
		if w.EAP == nil {
			return fieldErr(path+".eap", "is required for %s", w.Security)
		}
		if err := w.EAP.validate(v, path+".eap"); err != nil {
			return err
		}
	default:
		return fieldErr(path+".security", "must be one of %s, %s, %s, %s", WPA2Personal, WPA3Personal, WPA2Enterprise, WPA3Enterprise)
	}
	if w.Proxy != nil {
		switch w.Proxy.Type {
		case "none":
			if w.Proxy.PACURL != "" {
				return fieldErr(path+".proxy.pac_url", "applies only to proxy type \"auto\"")
			}
		case "auto":
			// https, because a PAC file fetched in clear text lets anyone on
			// the path route the device's traffic through their proxy.
			if err := checkURL(path+".proxy.pac_url", w.Proxy.PACURL, "https"); err != nil {
				return err
			}
		default:
			return fieldErr(path+".proxy.type", `must be "none" or "auto"`)
		}
	}
	return nil
}

func (e *WiFiEAP) validate(v *validator, path string) error {
	if _, ok := eapTypes[e.Method]; !ok {
		return fieldErr(path+".method", `must be "tls", "peap" or "ttls"`)
	}
	if e.Method == "tls" {
		if e.Password.IsSet() {
			return fieldErr(path+".password", "EAP-TLS authenticates with the certificate; remove the password")
		}
		if err := v.certificateRef(path+".certificate", e.Certificate, true); err != nil {
			return err
		}
	} else {
		if err := v.certificateRef(path+".certificate", e.Certificate, false); err != nil {
			return err
		}
		if err := checkText(path+".username", e.Username, 256, true); err != nil {
			return err
		}
	}
	if len(e.TrustedServerNames) == 0 || len(e.TrustedServerNames) > 20 {
		return fieldErr(path+".trusted_server_names", "list 1 to 20 RADIUS server certificate names (wildcards like *.example.com allowed)")
	}
	for _, name := range e.TrustedServerNames {
		if name == "" || len(name) > 253 || !utf8.ValidString(name) || hasControlChars(name, false) {
			return fieldErr(path+".trusted_server_names", "entries must be non-empty host names")
		}
	}
	return nil
}

func (w *WiFi) content(b *builder) (map[string]any, error) {
	autoJoin := w.AutoJoin == nil || *w.AutoJoin
	enc := "WPA2"
	if w.Security == WPA3Personal || w.Security == WPA3Enterprise {
		enc = "WPA3"
	}
	keys := map[string]any{
		"SSID_STR":       w.SSID,
		"HIDDEN_NETWORK": w.Hidden,
		"AutoJoin":       autoJoin,
		"EncryptionType": enc,
	}
	if pw := w.Password.Reveal(); len(pw) > 0 {
		keys["Password"] = string(pw)
	}
	if e := w.EAP; e != nil {
		eap := map[string]any{
			"AcceptEAPTypes":        []int{eapTypes[e.Method]},
			"TLSTrustedServerNames": e.TrustedServerNames,
		}
		if e.Method != "tls" {
			eap["UserName"] = e.Username
			if pw := e.Password.Reveal(); len(pw) > 0 {
				eap["UserPassword"] = string(pw)
			}
		}
		if e.Method == "ttls" {
			eap["TTLSInnerAuthentication"] = "MSCHAPv2"
		}
		keys["EAPClientConfiguration"] = eap
		if e.Certificate != "" {
			keys["PayloadCertificateUUID"] = b.certificateUUID(e.Certificate)
		}
	}
	if w.Proxy != nil {
		if w.Proxy.Type == "auto" {
			keys["ProxyType"] = "Auto"
			keys["ProxyPACURL"] = w.Proxy.PACURL
		} else {
			keys["ProxyType"] = "None"
		}
	}
	return keys, nil
}

func (w *WiFi) secrets() []namedSecret {
	s := []namedSecret{{"password", &w.Password, w.SSID}}
	if w.EAP != nil {
		s = append(s, namedSecret{"eap.password", &w.EAP.Password,
			anchor(w.SSID, w.EAP.Method, w.EAP.Username, w.EAP.Certificate, anchor(w.EAP.TrustedServerNames...))})
	}
	return s
}

// VPN authentication methods (VPN.Auth).
const (
	VPNAuthCertificate  = "certificate"
	VPNAuthSharedSecret = "shared_secret"
)

// Minimum shared-secret length: a short IKEv2 pre-shared key can be guessed
// offline by anyone who records one handshake.
const minSharedSecretLength = 16

// VPN configures an IKEv2 com.apple.vpn.managed payload.
type VPN struct {
	Name             string `json:"name"` // UserDefinedName shown in Settings
	RemoteAddress    string `json:"remote_address"`
	RemoteIdentifier string `json:"remote_identifier"`
	// LocalIdentifier is how the device names itself to the server. Apple's
	// schema (mdm/profiles/com.apple.vpn.managed.yaml, IKEv2) requires it.
	// Definitions stored before Steward required it still load, but no
	// longer build: the device state says so until an admin adds it.
	LocalIdentifier string `json:"local_identifier,omitempty"`
	Auth            string `json:"auth"`                  // VPNAuthCertificate or VPNAuthSharedSecret
	Certificate     string `json:"certificate,omitempty"` // id of a scep/pkcs12 payload
	// CertificateType is the identity key type: RSA (default), ECDSA256,
	// ECDSA384 or ECDSA521.
	CertificateType string     `json:"certificate_type,omitempty"`
	SharedSecret    Secret     `json:"shared_secret,omitzero"`
	OnDemand        bool       `json:"on_demand,omitempty"` // connect whenever the device has a network
	Crypto          *VPNCrypto `json:"crypto,omitempty"`
}

// VPNCrypto overrides the IKE and child SA proposals. Only modern choices
// are accepted; empty fields take the defaults AES-256-GCM, SHA2-256, 19.
type VPNCrypto struct {
	Encryption         string `json:"encryption,omitempty"`
	Integrity          string `json:"integrity,omitempty"`
	DiffieHellmanGroup int    `json:"dh_group,omitempty"`
}

var (
	vpnEncryptions = map[string]bool{"AES-256-GCM": true, "AES-128-GCM": true, "AES-256": true, "ChaCha20Poly1305": true}
	vpnIntegrities = map[string]bool{"SHA2-256": true, "SHA2-384": true, "SHA2-512": true}
	// Groups 14 and up (MODP 2048+) and the elliptic-curve groups; 1, 2 and 5
	// are broken.
	vpnDHGroups   = map[int]bool{14: true, 15: true, 16: true, 17: true, 18: true, 19: true, 20: true, 21: true, 31: true, 32: true}
	vpnCertTypes  = map[string]bool{"RSA": true, "ECDSA256": true, "ECDSA384": true, "ECDSA521": true}
	maxIKEv2Ident = 255
)

func (p *VPN) validate(v *validator, path string) error {
	if err := checkText(path+".name", p.Name, maxNameLength, true); err != nil {
		return err
	}
	if !isHostname(p.RemoteAddress) {
		return fieldErr(path+".remote_address", "must be the VPN server's host name or IP address, without scheme or port")
	}
	if err := checkText(path+".remote_identifier", p.RemoteIdentifier, maxIKEv2Ident, true); err != nil {
		return err
	}
	if strings.TrimSpace(p.LocalIdentifier) == "" {
		return fieldErr(path+".local_identifier", "is required: give the identity the device presents to the VPN server "+
			"(often its certificate's subject name or a fixed name the server expects)")
	}
	if err := checkText(path+".local_identifier", p.LocalIdentifier, maxIKEv2Ident, true); err != nil {
		return err
	}
	switch p.Auth {
	case VPNAuthCertificate:
		if p.SharedSecret.IsSet() {
			return fieldErr(path+".shared_secret", "applies only to auth %q", VPNAuthSharedSecret)
		}
		if err := v.certificateRef(path+".certificate", p.Certificate, true); err != nil {
			return err
		}
		if p.CertificateType != "" && !vpnCertTypes[p.CertificateType] {
			return fieldErr(path+".certificate_type", "must be RSA, ECDSA256, ECDSA384 or ECDSA521")
		}
	case VPNAuthSharedSecret:
		if p.Certificate != "" || p.CertificateType != "" {
			return fieldErr(path+".certificate", "applies only to auth %q", VPNAuthCertificate)
		}
		if !p.SharedSecret.Withheld() && utf8.RuneCount(p.SharedSecret.Reveal()) < minSharedSecretLength {
			return fieldErr(path+".shared_secret", "must be at least %d characters; prefer certificate authentication", minSharedSecretLength)
		}
	default:
		return fieldErr(path+".auth", "must be %q or %q", VPNAuthCertificate, VPNAuthSharedSecret)
	}
	if c := p.Crypto; c != nil {
		if c.Encryption != "" && !vpnEncryptions[c.Encryption] {
			return fieldErr(path+".crypto.encryption", "must be AES-256-GCM, AES-128-GCM, AES-256 or ChaCha20Poly1305")
		}
		if c.Integrity != "" && !vpnIntegrities[c.Integrity] {
			return fieldErr(path+".crypto.integrity", "must be SHA2-256, SHA2-384 or SHA2-512")
		}
		if c.DiffieHellmanGroup != 0 && !vpnDHGroups[c.DiffieHellmanGroup] {
			return fieldErr(path+".crypto.dh_group", "must be 14-21, 31 or 32; groups below 14 are too weak")
		}
	}
	return nil
}

func (p *VPN) content(b *builder) (map[string]any, error) {
	sa := map[string]any{
		"EncryptionAlgorithm": "AES-256-GCM",
		"IntegrityAlgorithm":  "SHA2-256",
		"DiffieHellmanGroup":  19,
	}
	if c := p.Crypto; c != nil {
		if c.Encryption != "" {
			sa["EncryptionAlgorithm"] = c.Encryption
		}
		if c.Integrity != "" {
			sa["IntegrityAlgorithm"] = c.Integrity
		}
		if c.DiffieHellmanGroup != 0 {
			sa["DiffieHellmanGroup"] = c.DiffieHellmanGroup
		}
	}
	ike := map[string]any{
		"RemoteAddress":                      p.RemoteAddress,
		"RemoteIdentifier":                   p.RemoteIdentifier,
		"LocalIdentifier":                    p.LocalIdentifier,
		"IKESecurityAssociationParameters":   sa,
		"ChildSecurityAssociationParameters": sa,
		"EnablePFS":                          1,
		"DeadPeerDetectionRate":              "Medium",
	}
	if p.Auth == VPNAuthCertificate {
		ike["AuthenticationMethod"] = "Certificate"
		ike["PayloadCertificateUUID"] = b.certificateUUID(p.Certificate)
		ike["CertificateType"] = "RSA"
		if p.CertificateType != "" {
			ike["CertificateType"] = p.CertificateType
		}
	} else {
		ike["AuthenticationMethod"] = "SharedSecret"
		ike["SharedSecret"] = string(p.SharedSecret.Reveal())
	}
	if p.OnDemand {
		ike["OnDemandEnabled"] = 1
		ike["OnDemandRules"] = []any{map[string]any{"Action": "Connect"}}
	}
	return map[string]any{
		"VPNType":         "IKEv2",
		"UserDefinedName": p.Name,
		"IKEv2":           ike,
	}, nil
}

func (p *VPN) secrets() []namedSecret {
	return []namedSecret{{"shared_secret", &p.SharedSecret, anchor(p.RemoteAddress, p.RemoteIdentifier)}}
}

// anchor joins fields unambiguously for namedSecret.anchor.
func anchor(fields ...string) string { return strings.Join(fields, "\x00") }

func isIPLiteral(s string) bool { return net.ParseIP(s) != nil }
