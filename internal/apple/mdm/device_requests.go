package mdm

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-mdm/steward/internal/apperr"
)

// newDeviceRequests counts the requests of Apple devices to the check-in
// and command endpoints, on the node that answered them. A device refused
// is told no more than a status, so this is how an operator sees a proxy
// stripping the Mdm-Signature header or a device that kept its identity
// after it was retired. Tenants not found share one series.
// unknownTenantLabel is the tenant of a request for none Steward knows, or
// refused before its tenant was read.
const unknownTenantLabel = "unknown"

func newDeviceRequests() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "steward_apple_device_requests_total",
		Help: "Requests from Apple devices to /mdm/{tenant}/checkin and /connect, by tenant (\"unknown\" when not found or not yet read), " +
			"endpoint and outcome: ok, or why the request was refused (" + deviceOutcomesHelp + ")."},
		[]string{"tenant", "endpoint", "outcome"})
}

const deviceOutcomesHelp = "not_signed: no valid signature or certificate of the tenant's CA; two_devices: the certificates " +
	"of two devices; unknown_device: a certificate of no enrolled device; left_device: a device that left management, told to unenrol; wrong_device: a device's certificate naming " +
	"another; bad_message; unsupported_type; too_large; not_found; refused: another refusal; server_error"

// errTwoDevices refuses a request presenting the certificates of two
// devices (identify).
var errTwoDevices = apperr.Forbidden("the request presents the certificates of two devices")

var identityRefusals = []struct {
	err     error
	outcome string
}{{errNotSigned, "not_signed"}, {errTwoDevices, "two_devices"}, {ErrUnknownDevice, "unknown_device"}, {ErrDeviceLeft, "left_device"},
	{ErrWrongDevice, "wrong_device"}}

// deviceOutcome names, from a fixed set, why err refused a device request
// answered with status.
func deviceOutcome(err error, status int) string {
	for _, known := range identityRefusals {
		if errors.Is(err, known.err) {
			return known.outcome
		}
	}
	switch {
	case status >= http.StatusInternalServerError:
		return "server_error"
	case apperr.IsKind(err, apperr.KindInvalid):
		return "bad_message"
	case apperr.IsKind(err, apperr.KindUnsupportedType):
		return "unsupported_type"
	case apperr.IsKind(err, apperr.KindTooLarge):
		return "too_large"
	case apperr.IsKind(err, apperr.KindNotFound):
		return "not_found"
	}
	return "refused"
}
