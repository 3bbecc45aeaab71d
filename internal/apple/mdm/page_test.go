package mdm

import (
	"errors"
	"net/http"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
)

// TestPageErrorsShowNoCause: a person sees an error's message, never its
// kind or an internal cause.
func TestPageErrorsShowNoCause(t *testing.T) {
	if status, msg := pageError(errors.New("sqlstore: reading enrolment: connection refused")); status != http.StatusInternalServerError ||
		msg != "Something went wrong; please try again later." {
		t.Errorf("an internal error: %d %q", status, msg)
	}
	if status, msg := pageError(apperr.Conflict("this enrolment link expired")); status != http.StatusConflict || msg != "this enrolment link expired" {
		t.Errorf("a conflict: %d %q", status, msg)
	}
}
