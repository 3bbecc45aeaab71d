package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"howett.net/plist"
)

// User is a user logged in on a simulated Mac or Shared iPad. Its messages
// go on the user channel: signed with the device's identity, naming the
// device and the user.
type User struct {
	Device *Device
	ID     string // the UserID, a GUID; Apple makes it optional, and none is sent when empty
	// EnrollmentUserID is the per-enrolment user identifier a User
	// Enrollment's Mac sends in every message of the user channel.
	EnrollmentUserID string
	ShortName        string
	LongName         string // sent by a Mac only: iOS has no UserLongName
	PushToken        []byte
	PushMagic        string
	// Profiles holds the profiles installed in the user's account.
	Profiles map[string][]byte
}

// NewUser is a new account on d; on a User Enrollment it also has the
// enrolment's user identifier.
func (d *Device) NewUser(shortName, longName string) *User {
	u := &User{Device: d, ID: newGUID(), ShortName: shortName, LongName: longName, PushToken: []byte(randomHex(32)),
		PushMagic: strings.ToUpper(randomHex(16)), Profiles: map[string][]byte{}}
	if d.userEnrolled() {
		u.EnrollmentUserID = newGUID()
	}
	return u
}

// newGUID is a random identifier in the form Apple's UserIDs take.
func newGUID() string {
	id := strings.ToUpper(randomHex(32))
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}

func (u *User) identify(m map[string]any) {
	u.Device.identify(m)
	if u.ShortName != "" {
		m["UserShortName"] = u.ShortName
	}
	if u.Device.mac() { // required on macOS, n/a on iOS (tokenupdate.yaml)
		m["UserLongName"] = u.LongName
	}
	if u.ID != "" {
		m["UserID"] = u.ID
	}
	if u.EnrollmentUserID != "" {
		m["EnrollmentUserID"] = u.EnrollmentUserID
	}
}

// LogIn is what a device does when the user first logs in under
// management: the user channel's TokenUpdate, after a UserAuthenticate on
// a Mac enrolled by device enrolment, the only one that sends it
// (userauthenticate.yaml: macOS only, User Enrollment forbidden). The
// simulator knows no password, so a server asking for a digest gets an
// error.
func (u *User) LogIn(ctx context.Context) error {
	if u.Device.mac() && !u.Device.userEnrolled() {
		if err := u.authenticate(ctx); err != nil {
			return err
		}
	}
	_, err := u.Checkin(ctx, u.TokenUpdate())
	return err
}

// authenticate is UserAuthenticate's first step, which a server that takes
// the device's word for its users answers with an empty DigestChallenge.
func (u *User) authenticate(ctx context.Context) error {
	out, err := u.Checkin(ctx, map[string]any{"MessageType": "UserAuthenticate"})
	if err != nil {
		return err
	}
	var challenge struct{ DigestChallenge *string }
	if _, err := plist.Unmarshal(out, &challenge); err != nil || challenge.DigestChallenge == nil {
		return fmt.Errorf("UserAuthenticate: the server's answer has no DigestChallenge: %q", out)
	}
	if *challenge.DigestChallenge != "" {
		return errors.New("UserAuthenticate: the server asks for a password digest")
	}
	return nil
}

// TokenUpdate is the user channel's TokenUpdate message; macOS requires
// NotOnConsole there, and iOS has none (tokenupdate.yaml).
func (u *User) TokenUpdate() map[string]any {
	m := map[string]any{"MessageType": "TokenUpdate", "Topic": u.Device.topic, "Token": u.PushToken, "PushMagic": u.PushMagic}
	if u.Device.mac() {
		m["NotOnConsole"] = false
	}
	return m
}

// Checkin sends a check-in message on the user channel.
func (u *User) Checkin(ctx context.Context, msg map[string]any) ([]byte, error) {
	u.identify(msg)
	return u.Device.Checkin(ctx, msg)
}

// Send posts one command-endpoint message on the user channel.
func (u *User) Send(ctx context.Context, msg map[string]any) ([]byte, error) {
	u.identify(msg)
	return u.Device.Send(ctx, msg)
}

// Poll sends Idle on the user channel and answers every command until the
// queue is empty; it returns how many commands it answered.
func (u *User) Poll(ctx context.Context) (int, error) {
	answered := 0
	msg := map[string]any{"Status": "Idle"}
	for {
		out, err := u.Send(ctx, msg)
		if err != nil || len(out) == 0 {
			return answered, err
		}
		var cmd struct {
			CommandUUID string
			Command     struct {
				RequestType string
				Payload     []byte
				Identifier  string
			}
		}
		if _, err := plist.Unmarshal(out, &cmd); err != nil {
			return answered, fmt.Errorf("the server sent an unreadable command: %w", err)
		}
		msg = map[string]any{"Status": "Acknowledged", "CommandUUID": cmd.CommandUUID, "RequestType": cmd.Command.RequestType}
		switch cmd.Command.RequestType {
		case "InstallProfile":
			var p struct{ PayloadIdentifier string }
			if _, err := plist.Unmarshal(cmd.Command.Payload, &p); err != nil || p.PayloadIdentifier == "" {
				msg["Status"] = "Error"
				msg["ErrorChain"] = []map[string]any{{"ErrorCode": 1000, "ErrorDomain": "MCProfileErrorDomain", "LocalizedDescription": "The profile is malformed."}}
			} else {
				u.Profiles[p.PayloadIdentifier] = cmd.Command.Payload
			}
		case "RemoveProfile":
			delete(u.Profiles, cmd.Command.Identifier)
		case "ProfileList":
			msg["ProfileList"] = u.Device.profileList(u.Profiles, false)
		default:
			msg["Status"] = "Error"
			msg["ErrorChain"] = []map[string]any{{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "The command is not supported on the user channel."}}
		}
		answered++
	}
}
