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

// UnmarshalPlist implements plist.Unmarshaler, refusing an ErrorCode an int
// does not hold as readInteger does.
func (e *ErrorChainItem) UnmarshalPlist(unmarshal func(any) error) error {
	type fields ErrorChainItem // without this method
	if err := unmarshal((*fields)(e)); err != nil {
		return err
	}
	var ints struct {
		ErrorCode checkedInteger `plist:"ErrorCode"`
	}
	return unmarshal(&ints)
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
	// envelope; nil when it could not (a <date> where a payload belongs),
	// and then each typed decoder reads Raw for its own key alone.
	payloads *resultPayloads
}

// resultPayloads are the result payloads Steward reads, keyed as Apple
// names them. DecodeResult decodes them with the envelope, so a result is
// parsed once, before the caller knows which command it answers.
type resultPayloads struct {
	QueryResponses           payload[DeviceInformationResult]       `plist:"QueryResponses"`
	SecurityInfo             payload[SecurityInfoResult]            `plist:"SecurityInfo"`
	InstalledApplicationList payload[[]InstalledApplication]        `plist:"InstalledApplicationList"`
	ManagedApplicationList   payload[map[string]ManagedApplication] `plist:"ManagedApplicationList"`
	ProfileList              payload[[]InstalledProfile]            `plist:"ProfileList"`
	CertificateList          payload[[]InstalledCertificate]        `plist:"CertificateList"`
}

// payload is one payload decoded with the envelope. A payload of the wrong
// shape must fail only the typed decoder that reads it, once the command
// it answers is known: its error is kept, not returned.
type payload[T any] struct {
	value   T
	present bool
	err     error
}

// UnmarshalPlist implements plist.Unmarshaler.
func (p *payload[T]) UnmarshalPlist(unmarshal func(any) error) error {
	p.present = true
	if p.err = unmarshal(&p.value); p.err != nil {
		var zero T
		p.value = zero
	}
	return nil
}

// get gives the payload's value, or the error that kept it from decoding.
func (p *payload[T]) get(into *T) error {
	*into = p.value
	return p.err
}

// getPointer is get for a payload read through a pointer, nil when absent.
func (p *payload[T]) getPointer(into **T) error {
	if p.present && p.err == nil {
		*into = &p.value
	}
	return p.err
}

// resultWire decodes a result with one pass of the parser: the envelope,
// then the payloads from the same parsed value.
type resultWire struct {
	Result
}

// UnmarshalPlist implements plist.Unmarshaler.
func (w *resultWire) UnmarshalPlist(unmarshal func(any) error) error {
	if err := unmarshal(&w.Result); err != nil {
		return err
	}
	// The parser refuses a <date> for any type but time.Time before a
	// payload's own decoder can keep the error; then the typed decoders
	// read Raw.
	if p := new(resultPayloads); unmarshal(p) == nil {
		w.payloads = p
	}
	return nil
}

// DecodeResult decodes a command result body (an XML plist of at most
// MaxResultBytes). Every result needs a known Status and a sender; all but
// Idle need the CommandUUID they answer.
func DecodeResult(body []byte) (Result, error) {
	var w resultWire
	if err := decodePlistWithin(body, MaxResultBytes, maxResultWeight, &w); err != nil {
		return Result{}, fmt.Errorf("decode command result: %w", err)
	}
	r := w.Result
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
func decodePayload(r Result, want RequestType, v any, decoded func(*resultPayloads) error) error {
	if r.Status != StatusAcknowledged {
		return fmt.Errorf("decode %s result: %w: status is %s, want %s", want, ErrMalformed, r.Status, StatusAcknowledged)
	}
	if r.RequestType != "" && r.RequestType != want {
		return fmt.Errorf("decode %s result: %w: result says %.64q", want, ErrWrongRequestType, string(r.RequestType))
	}
	if r.payloads != nil && decoded != nil {
		if err := decoded(r.payloads); err != nil {
			return fmt.Errorf("decode %s result: %w: %v", want, ErrMalformed, err)
		}
		return nil
	}
	if err := decodePlistWithin(r.Raw, MaxResultBytes, maxResultWeight, v); err != nil {
		return fmt.Errorf("decode %s result: %w", want, err)
	}
	return nil
}
