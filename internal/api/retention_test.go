package api

import (
	"testing"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestLongerRetentionAwaitsASecondAdminThroughTheAPI: a shorter period
// applies at once; a longer one answers with an approval, as a widening
// of the policy does, and applies once another admin grants it.
func TestLongerRetentionAwaitsASecondAdminThroughTheAPI(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		_, second := e.admin(e.rootID, "dpo@steward.test", "administrator")

		var rc RetentionChangeView
		e.must(200, e.owner, "PUT", base+"/privacy/retention", RetentionRequest{RetentionDays: map[privacy.Category]int{privacy.UsageLogs: 10},
			Reason: "logs are rarely needed after a week"}, &rc)
		if !rc.Applied || rc.Approval != nil || rc.RetentionDays[privacy.UsageLogs] != 10 {
			t.Fatalf("shortening usage logs to 10 days: %+v, want it applied at once", rc)
		}

		e.must(200, e.owner, "PUT", base+"/privacy/retention", RetentionRequest{RetentionDays: map[privacy.Category]int{privacy.UsageLogs: 45},
			Reason: "support cases run for weeks"}, &rc)
		if rc.Applied || rc.Approval == nil || rc.Approval.Kind != privacy.ApprovalKindRetention || rc.Approval.State != "pending" ||
			rc.RetentionDays[privacy.UsageLogs] != 10 {
			t.Fatalf("lengthening usage logs to 45 days: %+v, want an approval and the period unchanged", rc)
		}
		var pending List[ApprovalView]
		e.must(200, e.owner, "GET", base+"/approvals", nil, &pending)
		if len(pending.Items) != 1 || pending.Items[0].ID != rc.Approval.ID {
			t.Fatalf("approvals listed: %+v, want the retention change", pending.Items)
		}
		if r := e.do(e.owner, "POST", base+"/approvals/"+rc.Approval.ID+"/decision", DecisionRequest{Approve: true}); r.status != 403 {
			t.Fatalf("the requester approving their own lengthening: %d %s", r.status, r.body)
		}
		var pc PolicyChangeView
		e.must(200, second, "POST", base+"/approvals/"+rc.Approval.ID+"/decision", DecisionRequest{Approve: true}, &pc)
		if !pc.Applied || pc.RetentionDays[privacy.UsageLogs] != 45 {
			t.Fatalf("the second admin's approval: %+v", pc)
		}
		var settings PrivacySettingsView
		e.must(200, e.owner, "GET", base+"/privacy/settings", nil, &settings)
		if settings.RetentionDays[privacy.UsageLogs] != 45 {
			t.Errorf("usage logs kept %d days after approval, want 45", settings.RetentionDays[privacy.UsageLogs])
		}
	})
}
