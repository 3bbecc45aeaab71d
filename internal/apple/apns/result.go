package apns

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"time"
)

// Outcome says what the caller should do next with a device token.
type Outcome int

const (
	// Delivered: APNs accepted the push (200).
	Delivered Outcome = iota + 1
	// Unregistered: the token is dead for this topic (410); stop pushing to it
	// until the device reports a token newer than Result.UnregisteredAt.
	Unregistered
	// BadToken: APNs refused the token itself (400 BadDeviceToken,
	// DeviceTokenNotForTopic, MissingDeviceToken); the stored token is wrong.
	BadToken
	// Retry: a passing failure (5xx, network, timeout) that outlived the
	// client's attempts, a 429 at once (APNs asks for fewer pushes to the
	// device), a notification not sent before ctx ended (ReasonNotSent), or
	// one not sent because APNs kept failing (ReasonSkippedAfterFailures);
	// push again later.
	Retry
	// Fatal: APNs refused the certificate or topic (403, 400 BadTopic…, or a
	// certificate alert in the TLS handshake), or the certificate has expired.
	// Stop pushing until an administrator replaces it.
	Fatal
	// Rejected: the request itself was refused (other 4xx) or could not be
	// built; retrying the same notification will not help.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Unregistered:
		return "unregistered"
	case BadToken:
		return "bad_token"
	case Retry:
		return "retry"
	case Fatal:
		return "fatal"
	case Rejected:
		return "rejected"
	default:
		return "unknown"
	}
}

// Result is the fate of one Notification; Push returns them in input order.
// It carries no token or PushMagic, so it is safe to log.
type Result struct {
	Outcome        Outcome
	Status         int       // HTTP status of the last response; 0 if none arrived
	Reason         string    // APNs "reason" (e.g. BadDeviceToken), or one of ours for local refusals
	ID             string    // apns-id of the last response, to quote to Apple support
	UnregisteredAt time.Time // for Unregistered: when APNs learned the token was dead
	Attempts       int       // requests sent; 0 when refused or skipped locally
	Err            error     // transport or context error behind a Retry without response
}

// Reasons this package sets without asking APNs.
const (
	ReasonEmptyToken         = "EmptyToken"
	ReasonTokenTooLong       = "TokenTooLong"
	ReasonEmptyPushMagic     = "EmptyPushMagic"
	ReasonCertificateExpired = "CertificateExpired"
	ReasonSkipped            = "SkippedAfterFatal"
	ReasonNotSent            = "NotSent" // ctx ended before the notification was sent
	// ReasonSkippedAfterFailures: not sent, because the pushes before it in
	// the batch kept failing without a usable answer (stopAfterFailuresInRow).
	ReasonSkippedAfterFailures = "SkippedAfterFailures"
	// ReasonTLSCertificateRefused: APNs refused the certificate in the TLS
	// handshake (revoked, expired, unknown CA…), so no HTTP status came.
	ReasonTLSCertificateRefused = "TLSCertificateRefused"
)

// CertificateRefused reports whether APNs answered that the certificate or
// its topic is refused (403, 400 BadTopic…, or an alert in the TLS
// handshake): every push with it fails the same way until an administrator
// replaces it. A certificate that expired is refused locally, without an
// answer, and its dates already say so.
func (r Result) CertificateRefused() bool {
	return r.Outcome == Fatal && (r.Status != 0 || r.Reason == ReasonTLSCertificateRefused)
}

// apnsFailing reports whether r failed for want of a usable answer (network,
// timeout, 5xx): APNs or the way to it is failing, not the device.
func (r Result) apnsFailing() bool {
	return r.Outcome == Retry && r.Attempts > 0 && (r.Status == 0 || r.Status >= 500)
}

// documentedReasons are the reasons Apple documents for the provider API
// ("Handling notification responses from APNs"), and this package's own.
var documentedReasons = map[string]bool{
	"BadCollapseId": true, "BadDeviceToken": true, "BadExpirationDate": true, "BadMessageId": true, "BadPriority": true,
	"BadTopic": true, "DeviceTokenNotForTopic": true, "DuplicateHeaders": true, "IdleTimeout": true, "InvalidPushType": true,
	"MissingDeviceToken": true, "MissingTopic": true, "PayloadEmpty": true, "TopicDisallowed": true,
	"BadCertificate": true, "BadCertificateEnvironment": true, "ExpiredProviderToken": true, "Forbidden": true,
	"InvalidProviderToken": true, "MissingProviderToken": true, "UnrelatedKeyIdInToken": true, "BadEnvironmentKeyInToken": true,
	"BadPath": true, "MethodNotAllowed": true, "ExpiredToken": true, "Unregistered": true, "PayloadTooLarge": true,
	"TooManyProviderTokenUpdates": true, "TooManyRequests": true, "InternalServerError": true, "ServiceUnavailable": true,
	"Shutdown":       true,
	ReasonEmptyToken: true, ReasonTokenTooLong: true, ReasonEmptyPushMagic: true, ReasonCertificateExpired: true, ReasonSkipped: true,
	ReasonNotSent: true, ReasonSkippedAfterFailures: true, ReasonTLSCertificateRefused: true,
}

// Reason labels for results whose reason is not one of documentedReasons.
const (
	ReasonLabelNoResponse = "NoResponse" // no answer arrived (network, timeout)
	ReasonLabelOther      = "Other"      // an answer with a reason Apple does not document, or none
)

// ReasonLabel is r's reason as a metric label: one of a fixed set, so that
// a server answering nonsense cannot grow the label values without bound.
func (r Result) ReasonLabel() string {
	switch {
	case documentedReasons[r.Reason]:
		return r.Reason
	case r.Status == 0 && r.Reason == "":
		return ReasonLabelNoResponse
	default:
		return ReasonLabelOther
	}
}

// errorBody is the JSON APNs sends with every non-200 response.
type errorBody struct {
	Reason    string `json:"reason"`
	Timestamp int64  `json:"timestamp"` // milliseconds since the epoch, with 410 only
}

// classify turns one APNs response into a Result.
func classify(status int, body []byte, id string) Result {
	r := Result{Status: status, ID: id}
	var eb errorBody
	if len(body) > 0 && json.Unmarshal(body, &eb) == nil {
		r.Reason = eb.Reason
	}
	switch {
	case status == http.StatusOK:
		r.Outcome = Delivered
	case status == http.StatusGone:
		r.Outcome = Unregistered
		if eb.Timestamp > 0 {
			r.UnregisteredAt = time.UnixMilli(eb.Timestamp).UTC()
		}
	case status == http.StatusBadRequest:
		r.Outcome = classifyBadRequest(r.Reason)
	case status == http.StatusForbidden:
		r.Outcome = Fatal
	case status == http.StatusTooManyRequests, status >= 500:
		r.Outcome = Retry
	default:
		r.Outcome = Rejected
	}
	return r
}

func classifyBadRequest(reason string) Outcome {
	switch reason {
	case "BadDeviceToken", "DeviceTokenNotForTopic", "MissingDeviceToken":
		return BadToken
	case "BadTopic", "TopicDisallowed", "MissingTopic":
		// The certificate's topic is not accepted: an administrator must act.
		return Fatal
	case "IdleTimeout":
		// APNs closed an idle connection under the request: send it again.
		return Retry
	default:
		return Rejected
	}
}

// Backoff returns how long to wait before retry number attempt (1 for the
// first retry).
type Backoff func(attempt int) time.Duration

// ExponentialBackoff doubles from base up to limit, then keeps a random part
// (half to all of it) so that many nodes retrying together spread out.
func ExponentialBackoff(base, limit time.Duration) Backoff {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		if d <= 1 {
			return d
		}
		half := d / 2
		return half + rand.N(d-half+1)
	}
}
