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

// RefusalError is why a request got a CertRep FAILURE. Code and Reason name
// what was wrong and never carry the request's content (names, serials,
// keys, the challenge).
type RefusalError struct {
	FailInfo scep.FailInfo
	// Code is the reason in fixed snake_case words, the same for every
	// request refused alike: what audit entries are grouped by.
	Code   string
	Reason string
	// enrolmentID is the enrolment a refused issuance was for, set on a
	// copy once its challenge or renewed certificate named one.
	enrolmentID string
}

func (e *RefusalError) Error() string { return "scep: request refused: " + e.Reason }

func refusal(info scep.FailInfo, code, reason string) *RefusalError {
	return &RefusalError{FailInfo: info, Code: code, Reason: reason}
}

// Refuse is how an OnIssued hook refuses a request, code naming why in
// fixed words and reason in a sentence: the client gets a CertRep FAILURE
// (badRequest) instead of the certificate, and nothing changes.
func Refuse(code, reason string) *RefusalError { return refusal(failBadRequest, code, reason) }

// forEnrolment is r, refusing an issuance for enrolmentID; r itself may be
// a shared value (errChallenge), so it is copied.
func (r *RefusalError) forEnrolment(enrolmentID string) *RefusalError {
	c := *r
	c.enrolmentID = enrolmentID
	return &c
}

// Refused is what Config.OnRefused is told about a request answered with
// a CertRep FAILURE.
type Refused struct {
	TenantID string
	// EnrolmentID is the enrolment the request was for, "" when it was
	// refused before a challenge or a renewed certificate named one.
	EnrolmentID string
	// SourceIP is the client's address (Config.ClientIP), "" when unknown.
	SourceIP     string
	Code, Reason string
}
