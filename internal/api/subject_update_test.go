package api

import (
	"testing"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestUpdateSubjectThroughTheAPI: an admin who manages devices sets a
// person's Managed Apple Account; a read-only role cannot, nor can anyone
// change the e-mail this way (unknown fields are refused).
func TestUpdateSubjectThroughTheAPI(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		_, auditor := e.admin(e.rootID, "auditor@steward.test", "auditor")
		var sub SubjectView
		e.must(201, e.owner, "POST", base+"/subjects", SubjectRequest{Email: "erika@acme.test", ManagedAppleID: "erika@appleid.acme.test"}, &sub)
		account := "erika@appleid.example.test"
		e.must(403, auditor, "PATCH", base+"/subjects/"+sub.ID, SubjectUpdateRequest{ManagedAppleID: &account}, nil)
		e.must(400, e.owner, "PATCH", base+"/subjects/"+sub.ID, map[string]string{"email": "other@acme.test"}, nil)
		var got SubjectView
		e.must(200, e.owner, "PATCH", base+"/subjects/"+sub.ID, SubjectUpdateRequest{ManagedAppleID: &account}, &got)
		if got.ID != sub.ID || got.State != "active" {
			t.Errorf("the updated person: %+v", got)
		}
		e.must(404, e.owner, "PATCH", base+"/subjects/no-such-person", SubjectUpdateRequest{ManagedAppleID: &account}, nil)
	})
}
