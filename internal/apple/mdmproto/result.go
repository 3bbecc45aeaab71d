package mdmproto

import (
	"fmt"
)

// Status is the Status key of a command result.
type Status string

// Command result statuses defined by the protocol.
const (
	StatusIdle               Status = "Idle"               // no result; the device asks for the next command
	StatusAcknowledged       Status = "Acknowledged"       // the command succeeded
	StatusError              Status = "Error"              // the command failed; see ErrorChain
	StatusCommandFormatError Status = "CommandFormatError" // the device could not parse the command
	StatusNotNow             Status = "NotNow"             // the device cannot run it now; resend later
)

func (s Status) known() bool {
	switch s {
	case StatusIdle, StatusAcknowledged, StatusError, StatusCommandFormatError, StatusNotNow:
		return true
	}
	return false
}

// ErrorChainItem is one entry of a failed command's ErrorChain.
type ErrorChainItem struct {
	ErrorCode            int    `plist:"ErrorCode"`
	ErrorDomain          string `plist:"ErrorDomain"`
	LocalizedDescription string `plist:"LocalizedDescription,omitempty"`
	USEnglishDescription string `plist:"USEnglishDescription,omitempty"`
}

// Result is a decoded command result (the body of a connect request). The
// per-command payload stays in Raw; decode it with the typed Decode* functions
// once the caller knows, from CommandUUID, which command it answers.
type Result struct {
	Enrollment
	Status       Status           `plist:"Status"`
	CommandUUID  string           `plist:"CommandUUID,omitempty"`
	RequestType  RequestType      `plist:"RequestType,omitempty"`
	ErrorChain   []ErrorChainItem `plist:"ErrorChain,omitempty"`
	NotOnConsole bool             `plist:"NotOnConsole,omitempty"`
	// Raw is the whole body as received, for the typed payload decoders.
	Raw []byte `plist:"-"`
}

// DecodeResult decodes a command result body (an XML plist of at most
// MaxResultBytes). Every result needs a known Status and a sender; all but
// Idle need the CommandUUID they answer.
func DecodeResult(body []byte) (Result, error) {
	var r Result
	if err := decodePlist(body, MaxResultBytes, &r); err != nil {
		return Result{}, fmt.Errorf("decode command result: %w", err)
	}
	if r.Status == "" {
		return Result{}, fmt.Errorf("decode command result: %w", missing("Status"))
	}
	if !r.Status.known() {
		return Result{}, fmt.Errorf("decode command result: %w: %.64q", ErrUnknownStatus, string(r.Status))
	}
	if err := r.requireDevice(); err != nil {
		return Result{}, fmt.Errorf("decode command result: %w", err)
	}
	if r.Status != StatusIdle && r.CommandUUID == "" {
		return Result{}, fmt.Errorf("decode command result: %w", missing("CommandUUID"))
	}
	r.Raw = append([]byte(nil), body...)
	return r, nil
}

// decodePayload decodes r.Raw into v for the typed decoders. It refuses a
// result that is not Acknowledged (it carries no payload) or that names
// another request type.
func decodePayload(r Result, want RequestType, v any) error {
	if r.Status != StatusAcknowledged {
		return fmt.Errorf("decode %s result: %w: status is %s, want %s", want, ErrMalformed, r.Status, StatusAcknowledged)
	}
	if r.RequestType != "" && r.RequestType != want {
		return fmt.Errorf("decode %s result: %w: result says %.64q", want, ErrWrongRequestType, string(r.RequestType))
	}
	if err := decodePlist(r.Raw, MaxResultBytes, v); err != nil {
		return fmt.Errorf("decode %s result: %w", want, err)
	}
	return nil
}
