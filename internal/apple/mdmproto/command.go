package mdmproto

import (
	"fmt"
	"log/slog"
	"regexp"

	"howett.net/plist"
)

// RequestType is the RequestType key of a command.
type RequestType string

// Request types this codec builds.
const (
	RequestDeviceInformation        RequestType = "DeviceInformation"
	RequestSecurityInfo             RequestType = "SecurityInfo"
	RequestInstalledApplicationList RequestType = "InstalledApplicationList"
	RequestManagedApplicationList   RequestType = "ManagedApplicationList"
	RequestProfileList              RequestType = "ProfileList"
	RequestCertificateList          RequestType = "CertificateList"
	RequestInstallProfile           RequestType = "InstallProfile"
	RequestRemoveProfile            RequestType = "RemoveProfile"
	RequestDeviceLock               RequestType = "DeviceLock"
	RequestEraseDevice              RequestType = "EraseDevice"
	RequestRestartDevice            RequestType = "RestartDevice"
	RequestShutDownDevice           RequestType = "ShutDownDevice"
	RequestEnableLostMode           RequestType = "EnableLostMode"
	RequestDisableLostMode          RequestType = "DisableLostMode"
	RequestDeviceLocation           RequestType = "DeviceLocation"
	RequestClearPasscode            RequestType = "ClearPasscode"
	RequestScheduleOSUpdate         RequestType = "ScheduleOSUpdate"
	RequestInstallApplication       RequestType = "InstallApplication"
	RequestRemoveApplication        RequestType = "RemoveApplication"
)

// Request is one typed command request. The implementations in this package
// (DeviceInformation, DeviceLock, ...) are the only ones; Build encodes them.
type Request interface {
	RequestType() RequestType
	// wire returns the Command dictionary (RequestType included) after
	// checking the request's own arguments.
	wire() (any, error)
}

// Command is an encoded command ready to send to a device. Its plist may hold
// secrets (a PIN, an UnlockToken), so String, GoString and LogValue show only
// the request type and UUID.
type Command struct {
	UUID        string
	RequestType RequestType
	plist       []byte
}

// Plist returns a copy of the encoded command plist: the only place the
// secrets of a command appear.
func (c Command) Plist() []byte { return append([]byte(nil), c.plist...) }

func (c Command) String() string   { return fmt.Sprintf("%s command %s", c.RequestType, c.UUID) }
func (c Command) GoString() string { return c.String() }
func (c Command) LogValue() slog.Value {
	return slog.GroupValue(slog.String("request_type", string(c.RequestType)), slog.String("command_uuid", c.UUID))
}

// commandUUIDPattern keeps command UUIDs to printable tokens the server
// chose; a UUID is the usual form.
var commandUUIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Build encodes req as the plist {CommandUUID, Command{RequestType, ...}}.
func Build(commandUUID string, req Request) (Command, error) {
	if req == nil {
		return Command{}, fmt.Errorf("%w: no request", ErrInvalidCommand)
	}
	if !commandUUIDPattern.MatchString(commandUUID) {
		return Command{}, fmt.Errorf("build %s: %w: CommandUUID must be 1-128 letters, digits, '.', '_' or '-'", req.RequestType(), ErrInvalidCommand)
	}
	body, err := req.wire()
	if err != nil {
		return Command{}, fmt.Errorf("build %s: %w", req.RequestType(), err)
	}
	envelope := struct {
		CommandUUID string `plist:"CommandUUID"`
		Command     any    `plist:"Command"`
	}{commandUUID, body}
	out, err := plist.MarshalIndent(envelope, plist.XMLFormat, "\t")
	if err != nil {
		return Command{}, fmt.Errorf("build %s: encode plist: %w", req.RequestType(), err)
	}
	return Command{UUID: commandUUID, RequestType: req.RequestType(), plist: out}, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidCommand}, args...)...)
}

// bare is the Command dictionary of requests that take no arguments.
type bare struct {
	RequestType RequestType `plist:"RequestType"`
}
