// Package mdmproto is the Apple MDM wire codec: it turns check-in and command
// result plists into typed Go values, builds command plists, verifies the
// Mdm-Signature header and builds enrolment profiles. It knows nothing of HTTP,
// storage or tenants; callers translate its values into domain calls.
package mdmproto

import "errors"

// Errors returned by the decoders and builders. Callers match them with
// errors.Is; messages name keys and limits, never values from the device.
var (
	// ErrTooLarge means the body exceeds the decoder's size limit.
	ErrTooLarge = errors.New("mdmproto: message too large")
	// ErrMalformed means the body is not a plist of the expected shape.
	ErrMalformed = errors.New("mdmproto: malformed message")
	// ErrMissingKey means a key the protocol requires is absent or empty.
	ErrMissingKey = errors.New("mdmproto: required key missing")
	// ErrUnknownMessageType means a check-in MessageType this codec does not handle.
	ErrUnknownMessageType = errors.New("mdmproto: unknown check-in message type")
	// ErrUnknownStatus means a command result with a Status outside the protocol.
	ErrUnknownStatus = errors.New("mdmproto: unknown command status")
	// ErrWrongRequestType means a typed result decoder was used on a result
	// that reports a different RequestType.
	ErrWrongRequestType = errors.New("mdmproto: result is for another request type")
	// ErrInvalidCommand means a builder was given arguments the protocol rejects.
	ErrInvalidCommand = errors.New("mdmproto: invalid command")
	// ErrInvalidProfile means an enrolment profile is missing required settings.
	ErrInvalidProfile = errors.New("mdmproto: invalid enrolment profile")

	// ErrSignatureMissing means the Mdm-Signature header is empty.
	ErrSignatureMissing = errors.New("mdmproto: Mdm-Signature header missing")
	// ErrSignatureMalformed means the header is not base64 of a CMS SignedData.
	ErrSignatureMalformed = errors.New("mdmproto: Mdm-Signature malformed")
	// ErrSignatureInvalid means the signature does not cover this exact body.
	ErrSignatureInvalid = errors.New("mdmproto: Mdm-Signature does not match body")
	// ErrSignerUntrusted means the signer does not chain to the trusted roots
	// for client authentication at the given time.
	ErrSignerUntrusted = errors.New("mdmproto: Mdm-Signature signer not trusted")
)

var badInput = []error{ErrTooLarge, ErrMalformed, ErrMissingKey, ErrUnknownMessageType, ErrUnknownStatus, ErrWrongRequestType}

// IsBadInput reports whether err is a decoder's verdict on what the device
// sent, not a failure of the server's own.
func IsBadInput(err error) bool { return BadInputKind(err) != "" }

// BadInputKind is the verdict of IsBadInput in a few fixed words ("" for
// none), for logs: the full error may quote what the device sent, through
// the plist decoder's own messages.
func BadInputKind(err error) string {
	for _, bad := range badInput {
		if errors.Is(err, bad) {
			return bad.Error()
		}
	}
	return ""
}

// Size limits for device input. Check-ins are small; command results carry
// inventories (installed apps, profiles, certificates) and get more room.
const (
	MaxCheckinBytes = 1 << 20 // 1 MiB
	// MaxResultBytes holds a Mac's full app list (~1 KiB per app) many
	// times over; decoding costs tens of times the body size in memory.
	MaxResultBytes = 4 << 20 // 4 MiB
	// MaxSignatureHeaderBytes bounds the base64 Mdm-Signature header; a
	// signature with a short certificate chain is a few KiB.
	MaxSignatureHeaderBytes = 64 << 10
)
