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
	// payloads holds the payloads DecodeResult read in the same pass as the
	// envelope; nil when one of them did not decode, and then each typed
	// decoder reads Raw for its own key alone.
	payloads *Payloads
}

// Payloads are the result payloads Steward reads, keyed as Apple names
// them. DecodeResult decodes them with the envelope, so a result is parsed
// once, before the caller knows which command it answers.
type Payloads struct {
	QueryResponses           *DeviceInformationResult      `plist:"QueryResponses"`
	SecurityInfo             *SecurityInfoResult           `plist:"SecurityInfo"`
	InstalledApplicationList []InstalledApplication        `plist:"InstalledApplicationList"`
	ManagedApplicationList   map[string]ManagedApplication `plist:"ManagedApplicationList"`
	ProfileList              []InstalledProfile            `plist:"ProfileList"`
	CertificateList          []InstalledCertificate        `plist:"CertificateList"`
}

// DecodeResult decodes a command result body (an XML plist of at most
// MaxResultBytes). Every result needs a known Status and a sender; all but
// Idle need the CommandUUID they answer.
func DecodeResult(body []byte) (Result, error) {
	var whole struct {
		Result
		Payloads
	}
	if err := checkPlistBody(body, MaxResultBytes); err != nil {
		return Result{}, fmt.Errorf("decode command result: %w", err)
	}
	// A payload of the wrong shape must fail only the typed decoder that
	// reads it, once the command it answers is known: then the envelope is
	// decoded alone.
	var r Result
	if err := decodeXMLPlist(body, &whole); err == nil {
		r = whole.Result
		r.payloads = &whole.Payloads
	} else if err := decodeXMLPlist(body, &r); err != nil {
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

// decodePayload gives the typed decoders their payload: from what
// DecodeResult decoded (decoded copies it into v), or else by decoding r.Raw
// into v. It refuses a result that is not Acknowledged (it carries no
// payload) or that names another request type.
func decodePayload(r Result, want RequestType, v any, decoded func(*Payloads)) error {
	if r.Status != StatusAcknowledged {
		return fmt.Errorf("decode %s result: %w: status is %s, want %s", want, ErrMalformed, r.Status, StatusAcknowledged)
	}
	if r.RequestType != "" && r.RequestType != want {
		return fmt.Errorf("decode %s result: %w: result says %.64q", want, ErrWrongRequestType, string(r.RequestType))
	}
	if r.payloads != nil && decoded != nil {
		decoded(r.payloads)
		return nil
	}
	if err := decodePlist(r.Raw, MaxResultBytes, v); err != nil {
		return fmt.Errorf("decode %s result: %w", want, err)
	}
	return nil
}
