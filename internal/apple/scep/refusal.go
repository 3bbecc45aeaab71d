package scep

import (
	"github.com/smallstep/scep"
)

// Fail infos used in CertRep FAILURE responses (RFC 8894 section 3.2.1.4.5).
const (
	failBadAlg          = scep.BadAlg
	failBadRequest      = scep.BadRequest
	failBadMessageCheck = scep.BadMessageCheck
)

// RefusalError is why a request got a CertRep FAILURE. Reason names what was
// wrong and never carries the request's content (names, serials, keys).
type RefusalError struct {
	FailInfo scep.FailInfo
	Reason   string
}

func (e *RefusalError) Error() string { return "scep: request refused: " + e.Reason }

func refusal(info scep.FailInfo, reason string) *RefusalError {
	return &RefusalError{FailInfo: info, Reason: reason}
}

// Refuse is how an OnIssued hook refuses a request: the client gets a
// CertRep FAILURE (badRequest) instead of the certificate, and nothing
// changes.
func Refuse(reason string) *RefusalError { return refusal(failBadRequest, reason) }
