package mail

import (
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-smtp"
)

// Error kinds. Every error returned by Send is an *Error whose Kind is one of
// these, so callers can test with errors.Is(err, ErrAuth) and friends.
var (
	ErrInvalidMessage   = errors.New("mail: invalid message")
	ErrConnection       = errors.New("mail: connection to SMTP server failed")
	ErrTLSNotOffered    = errors.New("mail: SMTP server does not offer STARTTLS; refusing to send in clear text")
	ErrAuth             = errors.New("mail: SMTP authentication failed")
	ErrRecipientRefused = errors.New("mail: recipient refused")
	ErrRejected         = errors.New("mail: SMTP server rejected the message")
)

// Error is the error type returned by Send.
type Error struct {
	Kind      error  // one of the Err* kinds above
	Recipient string // the refused address, for ErrRecipientRefused
	Code      int    // SMTP reply code, 0 when the server gave none
	Err       error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Recipient != "" {
		b.WriteString(" <" + e.Recipient + ">")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause, so errors.Is works for
// ErrAuth as well as for context.Canceled, and errors.As finds
// *smtp.SMTPError.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// IsPermanent reports whether retrying the same Send cannot succeed without a
// change: invalid messages, 5xx replies and a server without STARTTLS (a
// configuration problem that should be fixed, not retried around). 4xx
// replies, network failures and timeouts are temporary.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrTLSNotOffered) {
		return true
	}
	if errors.Is(err, ErrConnection) {
		return false
	}
	var mailErr *Error
	if errors.As(err, &mailErr) && mailErr.Code != 0 {
		return mailErr.Code >= 500
	}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		return smtpErr.Code >= 500
	}
	// A kind without a reply code is a local refusal, e.g. the server does
	// not offer AUTH PLAIN; retrying will not change that.
	return mailErr != nil
}

func invalidMessage(err error) *Error {
	return &Error{Kind: ErrInvalidMessage, Err: err}
}

// classify turns an error from one protocol step into an *Error. Server
// replies keep the step's kind and their code; anything else that happened
// on the wire is a connection failure; a cancelled or expired ctx wins over
// whatever error the closed connection produced.
func classify(ctx context.Context, kind error, recipient string, err error) *Error {
	if ctxErr := context.Cause(ctx); ctxErr != nil {
		return &Error{Kind: ErrConnection, Err: ctxErr}
	}
	var smtpErr *smtp.SMTPError
	if errors.As(err, &smtpErr) {
		return &Error{Kind: kind, Recipient: recipient, Code: smtpErr.Code, Err: err}
	}
	return &Error{Kind: ErrConnection, Err: err}
}
