package mdmproto

import "fmt"

// MessageType is the check-in MessageType key.
type MessageType string

// Check-in message types this codec decodes.
const (
	MessageAuthenticate          MessageType = "Authenticate"
	MessageTokenUpdate           MessageType = "TokenUpdate"
	MessageCheckOut              MessageType = "CheckOut"
	MessageUserAuthenticate      MessageType = "UserAuthenticate"
	MessageSetBootstrapToken     MessageType = "SetBootstrapToken"
	MessageGetBootstrapToken     MessageType = "GetBootstrapToken"
	MessageDeclarativeManagement MessageType = "DeclarativeManagement"
)

// Enrollment identifies who sent a message: a device (UDID), a User
// Enrollment (EnrollmentID instead of UDID) and, on the user channel, a user.
type Enrollment struct {
	UDID             string `plist:"UDID,omitempty"`
	EnrollmentID     string `plist:"EnrollmentID,omitempty"`
	EnrollmentUserID string `plist:"EnrollmentUserID,omitempty"`
	UserID           string `plist:"UserID,omitempty"`
	UserShortName    string `plist:"UserShortName,omitempty"`
	UserLongName     string `plist:"UserLongName,omitempty"`
}

// DeviceID is the identifier the device channel is keyed on: the UDID, or the
// EnrollmentID for User Enrollment. Only a User Enrollment has an
// EnrollmentID, and it names it in every message, while a Mac may add its
// UDID to some (Apple forbids that in a CheckOut only on iOS and visionOS):
// the EnrollmentID keys its channel whatever else comes with it.
func (e Enrollment) DeviceID() string {
	if e.EnrollmentID != "" {
		return e.EnrollmentID
	}
	return e.UDID
}

// IsUserEnrollment reports whether the message comes from a User Enrollment
// (BYOD), whose channel is never keyed on the hardware UDID.
func (e Enrollment) IsUserEnrollment() bool { return e.EnrollmentID != "" }

// IsUserChannel reports whether the message arrived on a user channel
// (macOS user or Shared iPad user) rather than the device channel. Any of
// the user keys says so: Apple requires UserLongName on a Mac's user
// channel and allows none of them on the device channel.
func (e Enrollment) IsUserChannel() bool {
	return e.UserID != "" || e.UserShortName != "" || e.EnrollmentUserID != "" || e.UserLongName != ""
}

// requireDevice refuses a message that names no device, or a user-channel
// message that names no user by a key one can be told apart by (a full
// name alone is no identifier).
func (e Enrollment) requireDevice() error {
	if e.DeviceID() == "" {
		return missing("UDID or EnrollmentID")
	}
	if e.IsUserChannel() && e.UserID == "" && e.UserShortName == "" && e.EnrollmentUserID == "" {
		return missing("UserID, UserShortName or EnrollmentUserID")
	}
	return nil
}

// Checkin is one decoded check-in message: *Authenticate, *TokenUpdate,
// *CheckOut, *UserAuthenticate, *SetBootstrapToken, *GetBootstrapToken or
// *DeclarativeManagement. Use a type switch.
type Checkin interface {
	MessageType() MessageType
	Sender() Enrollment
}

// Authenticate is sent when the MDM payload is being installed.
type Authenticate struct {
	Enrollment
	Topic        string `plist:"Topic"`
	DeviceName   string `plist:"DeviceName,omitempty"`
	Model        string `plist:"Model,omitempty"`
	ModelName    string `plist:"ModelName,omitempty"`
	ProductName  string `plist:"ProductName,omitempty"`
	SerialNumber string `plist:"SerialNumber,omitempty"`
	OSVersion    string `plist:"OSVersion,omitempty"`
	BuildVersion string `plist:"BuildVersion,omitempty"`
	IMEI         string `plist:"IMEI,omitempty"`
	MEID         string `plist:"MEID,omitempty"`
}

// TokenUpdate carries the push token for the device or user channel.
type TokenUpdate struct {
	Enrollment
	Topic                 string      `plist:"Topic"`
	Token                 []byte      `plist:"Token"`
	PushMagic             string      `plist:"PushMagic"`
	UnlockToken           SecretBytes `plist:"UnlockToken,omitempty"`
	AwaitingConfiguration bool        `plist:"AwaitingConfiguration,omitempty"`
	NotOnConsole          bool        `plist:"NotOnConsole,omitempty"`
}

// CheckOut is sent when the MDM profile is removed (CheckOutWhenRemoved).
type CheckOut struct {
	Enrollment
	Topic string `plist:"Topic"`
}

// UserAuthenticate asks the server to accept a macOS user channel. The first
// message has no DigestResponse; the second answers the server's challenge.
type UserAuthenticate struct {
	Enrollment
	DigestResponse string `plist:"DigestResponse,omitempty"`
}

// SetBootstrapToken escrows a macOS bootstrap token; an empty token clears it.
type SetBootstrapToken struct {
	Enrollment
	BootstrapToken        SecretBytes `plist:"BootstrapToken,omitempty"`
	AwaitingConfiguration bool        `plist:"AwaitingConfiguration,omitempty"`
}

// GetBootstrapToken asks the server for the escrowed bootstrap token.
type GetBootstrapToken struct {
	Enrollment
	AwaitingConfiguration bool `plist:"AwaitingConfiguration,omitempty"`
}

// DeclarativeManagement carries a declarative management request: Endpoint
// names what is asked for ("tokens", "declaration-items", "status", ...) and
// Data is the raw JSON document the device sent, if any.
type DeclarativeManagement struct {
	Enrollment
	Endpoint string `plist:"Endpoint"`
	Data     []byte `plist:"Data,omitempty"`
}

func (*Authenticate) MessageType() MessageType          { return MessageAuthenticate }
func (*TokenUpdate) MessageType() MessageType           { return MessageTokenUpdate }
func (*CheckOut) MessageType() MessageType              { return MessageCheckOut }
func (*UserAuthenticate) MessageType() MessageType      { return MessageUserAuthenticate }
func (*SetBootstrapToken) MessageType() MessageType     { return MessageSetBootstrapToken }
func (*GetBootstrapToken) MessageType() MessageType     { return MessageGetBootstrapToken }
func (*DeclarativeManagement) MessageType() MessageType { return MessageDeclarativeManagement }

func (m *Authenticate) Sender() Enrollment          { return m.Enrollment }
func (m *TokenUpdate) Sender() Enrollment           { return m.Enrollment }
func (m *CheckOut) Sender() Enrollment              { return m.Enrollment }
func (m *UserAuthenticate) Sender() Enrollment      { return m.Enrollment }
func (m *SetBootstrapToken) Sender() Enrollment     { return m.Enrollment }
func (m *GetBootstrapToken) Sender() Enrollment     { return m.Enrollment }
func (m *DeclarativeManagement) Sender() Enrollment { return m.Enrollment }

// DecodeCheckin decodes a check-in request body (an XML plist of at most
// MaxCheckinBytes) and checks the keys the protocol requires.
func DecodeCheckin(body []byte) (Checkin, error) {
	var w checkinWire
	if err := decodePlist(body, MaxCheckinBytes, &w); err != nil {
		if w.messageType != "" {
			return nil, fmt.Errorf("decode %s check-in: %w", w.messageType, err)
		}
		return nil, fmt.Errorf("decode check-in: %w", err)
	}
	if w.msg == nil {
		if w.messageType == "" {
			return nil, fmt.Errorf("decode check-in: %w", missing("MessageType"))
		}
		return nil, fmt.Errorf("decode check-in: %w: %.64q", ErrUnknownMessageType, string(w.messageType))
	}
	if err := w.msg.Sender().requireDevice(); err != nil {
		return nil, fmt.Errorf("decode %s check-in: %w", w.messageType, err)
	}
	if err := w.validate(); err != nil {
		return nil, fmt.Errorf("decode %s check-in: %w", w.messageType, err)
	}
	return w.msg, nil
}

// checkinWire decodes a check-in with one pass of the parser: the
// MessageType, then the message of that type from the same parsed value.
type checkinWire struct {
	messageType MessageType
	msg         Checkin // nil for a type newCheckin does not handle
	validate    func() error
}

// UnmarshalPlist implements plist.Unmarshaler.
func (w *checkinWire) UnmarshalPlist(unmarshal func(any) error) error {
	var head struct {
		MessageType MessageType `plist:"MessageType"`
	}
	if err := unmarshal(&head); err != nil {
		return err
	}
	w.messageType = head.MessageType
	if w.msg, w.validate = newCheckin(head.MessageType); w.msg == nil {
		return nil
	}
	return unmarshal(w.msg)
}

// newCheckin returns an empty message for t and the check of its own required
// keys, or nil for a type this codec does not handle.
func newCheckin(t MessageType) (Checkin, func() error) {
	switch t {
	case MessageAuthenticate:
		m := &Authenticate{}
		return m, func() error { return requireStrings("Topic", m.Topic) }
	case MessageTokenUpdate:
		m := &TokenUpdate{}
		return m, func() error {
			if len(m.Token) == 0 {
				return missing("Token")
			}
			return requireStrings("Topic", m.Topic, "PushMagic", m.PushMagic)
		}
	case MessageCheckOut:
		m := &CheckOut{}
		return m, func() error { return requireStrings("Topic", m.Topic) }
	case MessageUserAuthenticate:
		m := &UserAuthenticate{}
		return m, func() error { return requireStrings("UserID", m.UserID) }
	case MessageSetBootstrapToken:
		m := &SetBootstrapToken{}
		return m, func() error { return nil }
	case MessageGetBootstrapToken:
		m := &GetBootstrapToken{}
		return m, func() error { return nil }
	case MessageDeclarativeManagement:
		m := &DeclarativeManagement{}
		return m, func() error { return requireStrings("Endpoint", m.Endpoint) }
	}
	return nil, nil
}

// requireStrings takes name, value pairs and reports the first empty value.
func requireStrings(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return missing(pairs[i])
		}
	}
	return nil
}
