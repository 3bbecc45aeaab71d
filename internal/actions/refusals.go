package actions

import (
	"slices"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
)

// Why a rule refused an action on one device of a request: the stable code
// a refused action carries (store.DeviceAction.RefusalCode) beside its
// text. Besides these, the codes of mdm's ineligible devices apply
// (mdm.IneligibleReasons: not enrolled, ownership, collection policy…).
const (
	// RefusedLeaving: the device is leaving management (its employee
	// withdrew consent); only delete may still be requested.
	RefusedLeaving = "leaving"
	// RefusedGone: the device no longer exists (it was purged between the
	// request and its approval).
	RefusedGone = "not_found"
)

// RefusalCodes lists every code a refused action may carry, for clients
// and the OpenAPI document.
func RefusalCodes() []string {
	return append(slices.Clone(mdm.IneligibleReasons()), mdm.SkipQueueFull, RefusedLeaving, RefusedGone)
}

// refusalCode is the code of a rule's refusal e: the reason it carries
// (detail "reason"), else mdm.SkipRefused.
func refusalCode(e *apperr.Error) string {
	if reason, _ := e.Details["reason"].(string); slices.Contains(RefusalCodes(), reason) {
		return reason
	}
	if e.Kind == apperr.KindNotFound {
		return RefusedGone
	}
	return mdm.SkipRefused
}
