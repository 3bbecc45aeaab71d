package mdm_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestBulkRequestThatDoesNotBuild: a command that no device could take as
// sent (RemoveApplication naming no app) fails the whole request as bad
// input, queues nothing and is not audited as queued, even when another
// device of the request was skipped by a rule of its own first.
func TestBulkRequestThatDoesNotBuild(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.UserEnrolled)
	f.publish(privacy.Corporate)
	ts := f.serve()
	_, ueMac := f.polled(ts, privacy.UserEnrolled, f.subject("erika@acme.test"), mac)
	_, phone := f.polled(ts, privacy.Corporate, "")
	head := auditSeq(t, f.st, f.tenant)
	before := len(f.commandsOf(phone.ID))

	cmds, skipped, err := f.svc.EnqueueBulk(f.ctx, f.tenant, []string{ueMac.ID, phone.ID}, mdmproto.RemoveApplication{}, "", admin)
	if !apperr.IsKind(err, apperr.KindInvalid) || len(cmds) != 0 {
		t.Errorf("RemoveApplication naming no app, sent in bulk: %d queued, skipped %+v, %v; want refused as invalid", len(cmds), skipped, err)
	}
	if got := auditSeq(t, f.st, f.tenant); got != head {
		t.Errorf("%d audit entries for a refused request", got-head)
	}
	if got := len(f.commandsOf(phone.ID)); got != before {
		t.Errorf("%d commands queued", got-before)
	}
}
