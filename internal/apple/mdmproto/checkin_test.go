package mdmproto

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDecodeCheckinMessages(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, c Checkin)
	}{
		{"authenticate device", authenticateDevice, func(t *testing.T, c Checkin) {
			m := c.(*Authenticate)
			if m.UDID != fixtureUDID || m.Topic != fixtureTopic || m.SerialNumber != "F9FXK2L3Q1" ||
				m.DeviceName != "Reception iPad" || m.Model != "iPad13,18" || m.ModelName != "iPad" ||
				m.ProductName != "iPad13,18" || m.OSVersion != "17.4.1" || m.BuildVersion != "21E236" ||
				m.IMEI != "35 396409 123456 7" || m.MEID != "35396409123456" {
				t.Errorf("fields not decoded: %+v", m)
			}
			if m.Sender().IsUserEnrollment() || m.Sender().IsUserChannel() {
				t.Error("device enrolment reported as user enrolment or user channel")
			}
		}},
		{"authenticate user enrollment", authenticateUserEnrollment, func(t *testing.T, c Checkin) {
			m := c.(*Authenticate)
			if !m.IsUserEnrollment() || m.DeviceID() != fixtureEnrollmentID || m.SerialNumber != "" {
				t.Errorf("user enrollment not recognised: %+v", m)
			}
		}},
		{"token update device channel", tokenUpdateDevice, func(t *testing.T, c Checkin) {
			m := c.(*TokenUpdate)
			if string(m.Token) != "push-token-bytes" || string(m.UnlockToken.Reveal()) != "unlock-token-secret" ||
				m.PushMagic != "2D1A3C4B-0000-4E5F-8A9B-C0D1E2F3A4B5" || m.Topic != fixtureTopic {
				t.Errorf("fields not decoded: token=%q push magic=%q", m.Token, m.PushMagic)
			}
			if m.IsUserChannel() {
				t.Error("device channel reported as user channel")
			}
		}},
		{"token update user channel", tokenUpdateUser, func(t *testing.T, c Checkin) {
			m := c.(*TokenUpdate)
			if !m.IsUserChannel() || m.UserShortName != "jdoe" || m.UserLongName != "Jane Doe" || m.DeviceID() != fixtureUDID {
				t.Errorf("user channel not recognised: %+v", m.Enrollment)
			}
		}},
		{"check out", checkOut, func(t *testing.T, c Checkin) {
			if m := c.(*CheckOut); m.Topic != fixtureTopic || m.UDID != fixtureUDID {
				t.Errorf("fields not decoded: %+v", m)
			}
		}},
		{"user authenticate", userAuthenticate, func(t *testing.T, c Checkin) {
			if m := c.(*UserAuthenticate); m.UserID == "" || m.DigestResponse != "" || !m.IsUserChannel() {
				t.Errorf("fields not decoded: %+v", m)
			}
		}},
		{"set bootstrap token", setBootstrapToken, func(t *testing.T, c Checkin) {
			if m := c.(*SetBootstrapToken); string(m.BootstrapToken.Reveal()) != "bootstrap-token" || !m.AwaitingConfiguration {
				t.Errorf("fields not decoded: awaiting=%v", m.AwaitingConfiguration)
			}
		}},
		{"get bootstrap token", getBootstrapToken, func(t *testing.T, c Checkin) {
			if m := c.(*GetBootstrapToken); !m.AwaitingConfiguration || m.UDID != fixtureUDID {
				t.Errorf("fields not decoded: %+v", m)
			}
		}},
		{"declarative management", declarativeManagement, func(t *testing.T, c Checkin) {
			m := c.(*DeclarativeManagement)
			if m.Endpoint != "declaration-items" || string(m.Data) != `{"SyncTokens":{"DeclarationsToken":"abc"}}` {
				t.Errorf("fields not decoded: endpoint=%q data=%q", m.Endpoint, m.Data)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCheckin(tt.body)
			if err != nil {
				t.Fatalf("DecodeCheckin: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestDecodeCheckinMessageTypes(t *testing.T) {
	for body, want := range map[*[]byte]MessageType{
		&authenticateDevice: MessageAuthenticate, &tokenUpdateDevice: MessageTokenUpdate, &checkOut: MessageCheckOut,
		&userAuthenticate: MessageUserAuthenticate, &setBootstrapToken: MessageSetBootstrapToken,
		&getBootstrapToken: MessageGetBootstrapToken, &declarativeManagement: MessageDeclarativeManagement,
	} {
		c, err := DecodeCheckin(*body)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if c.MessageType() != want {
			t.Errorf("MessageType() = %s, want %s", c.MessageType(), want)
		}
	}
}

// TestXMLShapeCountsExactly: nesting is refused one level past the limit,
// not before, and end tags that close nothing cannot buy nesting beyond it.
func TestXMLShapeCountsExactly(t *testing.T) {
	nested := func(levels int) string { // <plist> is the first level
		return plistHead + strings.Repeat("<array>", levels-1) + strings.Repeat("</array>", levels-1) + "</plist>"
	}
	for _, c := range []struct {
		name, body string
		want       string // in the error; "" for none
	}{
		{"a well-formed plist", plistHead + "<dict><key>a</key><string>b</string></dict></plist>", ""},
		{"nested to the limit", nested(maxPlistDepth), ""},
		{"nested past the limit", nested(maxPlistDepth + 1), "nested deeper"},
		{"stray end tags before nesting past the limit", strings.Repeat("</array>", 10) + nested(maxPlistDepth+1), "closes nothing"},
		{"stray end tags inside", plistHead + "<array></array></array></array>" + strings.Repeat("<array>", maxPlistDepth) +
			strings.Repeat("</array>", maxPlistDepth) + "</plist>", "closes nothing"},
	} {
		err := checkXMLShape([]byte(c.body), maxMessageWeight)
		if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestDecodeCheckinRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"empty body", nil, ErrMalformed},
		{"not xml", []byte("hello"), ErrMalformed},
		{"truncated", authenticateDevice[:len(authenticateDevice)/2], ErrMalformed},
		{"binary plist", []byte("bplist00\xd1\x01\x02"), ErrMalformed},
		{"openstep text plist", []byte(`{MessageType = Authenticate; Topic = x; UDID = y;}`), ErrMalformed},
		{"nested too deep", []byte(plistHead + strings.Repeat("<array>", maxPlistDepth+1) + strings.Repeat("</array>", maxPlistDepth+1) + "</plist>"), ErrMalformed},
		{"top-level array", []byte(plistHead + "<array><string>x</string></array></plist>"), ErrMalformed},
		{"token is a string", doc(kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
			kv("Token", "not-data"), kv("PushMagic", "x")), ErrMalformed},
		{"too large", append(authenticateDevice, bytes.Repeat([]byte(" "), MaxCheckinBytes)...), ErrTooLarge},
		{"no message type", doc(kv("Topic", fixtureTopic), kv("UDID", fixtureUDID)), ErrMissingKey},
		{"unknown message type", doc(kv("MessageType", "Enroll"), kv("UDID", fixtureUDID)), ErrUnknownMessageType},
		{"authenticate without topic", doc(kv("MessageType", "Authenticate"), kv("UDID", fixtureUDID)), ErrMissingKey},
		{"authenticate without identity", doc(kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic)), ErrMissingKey},
		{"token update without token", doc(kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic),
			kv("UDID", fixtureUDID), kv("PushMagic", "x")), ErrMissingKey},
		{"token update without push magic", doc(kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic),
			kv("UDID", fixtureUDID), kd("Token", fixtureTokenB64)), ErrMissingKey},
		{"check out without topic", doc(kv("MessageType", "CheckOut"), kv("UDID", fixtureUDID)), ErrMissingKey},
		{"user authenticate without user", doc(kv("MessageType", "UserAuthenticate"), kv("UDID", fixtureUDID)), ErrMissingKey},
		{"user token update named by its full name alone", doc(kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic),
			kv("UDID", fixtureUDID), kd("Token", fixtureTokenB64), kv("PushMagic", "x"), kv("UserLongName", "Erika Muster")), ErrMissingKey},
		{"declarative management without endpoint", doc(kv("MessageType", "DeclarativeManagement"), kv("UDID", fixtureUDID)), ErrMissingKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCheckin(tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeCheckin error = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Errorf("DecodeCheckin returned a message with an error: %T", c)
			}
		})
	}
}

func TestCheckinSecretsAreRedacted(t *testing.T) {
	c, err := DecodeCheckin(tokenUpdateDevice)
	if err != nil {
		t.Fatal(err)
	}
	m := c.(*TokenUpdate)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, m)
		if strings.Contains(out, "unlock-token-secret") || strings.Contains(out, "756e6c6f636b") {
			t.Errorf("%s leaks the unlock token: %s", verb, out)
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("token update", "message", m)
	if strings.Contains(logged.String(), "unlock-token-secret") || strings.Contains(logged.String(), fixtureUnlockB64) {
		t.Errorf("slog leaks the unlock token: %s", logged.String())
	}
	if !strings.Contains(fmt.Sprintf("%+v", m), redacted) {
		t.Error("redaction placeholder missing from formatted TokenUpdate")
	}
}

// TestUserEnrollmentKeyedOnItsEnrollmentID: a user-enrolled Mac may name
// its UDID beside its EnrollmentID (in a CheckOut, Apple forbids that only
// on iOS and visionOS); its channel stays keyed on the EnrollmentID.
func TestUserEnrollmentKeyedOnItsEnrollmentID(t *testing.T) {
	both := Enrollment{UDID: fixtureUDID, EnrollmentID: fixtureEnrollmentID}
	if both.DeviceID() != fixtureEnrollmentID || !both.IsUserEnrollment() {
		t.Errorf("UDID and EnrollmentID: keyed on %q, user enrollment %v; want the EnrollmentID, true", both.DeviceID(), both.IsUserEnrollment())
	}
	device := Enrollment{UDID: fixtureUDID}
	if device.DeviceID() != fixtureUDID || device.IsUserEnrollment() {
		t.Errorf("UDID alone: keyed on %q, user enrollment %v; want the UDID, false", device.DeviceID(), device.IsUserEnrollment())
	}
}
