package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/api"
)

// TestEnrolmentRevokeCommand: `steward enrolment create` makes a link,
// `enrolment revoke` revokes it, which `enrolment list` then shows revoked,
// and refuses one a device enrolled with, saying to retire the device.
func TestEnrolmentRevokeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("serves an instance and enrols a device")
	}
	fleetServer(t, t.TempDir())
	if out := mustCLI(t, nil, "simulate", "apple", "--setup", "-n", "1", "-c", "1", "--keys", "1", "--ec-identity"); !strings.Contains(out, "1 ok, 0 failed") {
		t.Fatalf("simulate: %s", out)
	}
	enrolments := func() []api.EnrolmentView {
		t.Helper()
		var list api.List[api.EnrolmentView]
		if err := json.Unmarshal([]byte(mustCLI(t, nil, "enrolment", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		return list.Items
	}
	used := enrolments()
	if len(used) != 1 || used[0].State != "used" {
		t.Fatalf("enrolments after enrolling one device: %+v", used)
	}

	var open api.NewEnrolmentView
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "enrolment", "create", "--ownership", "corporate", "--json")), &open); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(open.Link, "/enrol/sel_") || open.Enrolment.State != "open" {
		t.Fatalf("enrolment create: %+v", open)
	}
	if out := mustCLI(t, nil, "enrolment", "create", "--ownership", "corporate"); !strings.Contains(out, "shown once") || !strings.Contains(out, "/enrol/sel_") {
		t.Fatalf("enrolment create, as text: %s", out)
	}
	if _, _, err := cli(t, nil, "enrolment", "create", "--ownership", "corporate", "--mail"); err == nil || !strings.Contains(err.Error(), "subject_id") {
		t.Fatalf("a mailed link for nobody: %v", err)
	}

	if out := mustCLI(t, nil, "enrolment", "revoke", open.Enrolment.ID); !strings.Contains(out, open.Enrolment.ID) || !strings.Contains(out, "revoked") {
		t.Fatalf("enrolment revoke: %s", out)
	}
	i := slices.IndexFunc(enrolments(), func(e api.EnrolmentView) bool { return e.ID == open.Enrolment.ID })
	if i < 0 || enrolments()[i].State != "revoked" {
		t.Fatalf("the revoked link in the list: %+v", enrolments())
	}
	if _, _, err := cli(t, nil, "enrolment", "revoke", used[0].ID); err == nil || !strings.Contains(err.Error(), "retire") {
		t.Fatalf("revoking a used link: %v; want a refusal saying to retire the device", err)
	}
}
