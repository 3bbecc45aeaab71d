package server

import (
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

func (f *testFleet) groupMembers(groupID string) []string {
	f.t.Helper()
	var m api.GroupMembersView
	f.must(200, f.owner, "GET", f.path("/groups/"+groupID+"/members"), nil, &m)
	return m.Items
}

// TestFreshnessReviewGroupsOnRecordFacts: dynamic groups on facts of the
// device record follow them without an inventory report. The hourly job
// puts a device silent for a month in "last seen over 7 days ago" and,
// once the hourly pass marked it, in "noncompliant"; once it checks in
// again, the next run takes it out of the first.
func TestFreshnessReviewGroupsOnRecordFacts(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var nc, silent, iosSilent api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Noncompliant", Kind: "dynamic",
			Rule: []byte(`{"attr":"compliance","op":"eq","value":"noncompliant"}`)}, &nc)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Silent", Kind: "dynamic",
			Rule: []byte(`{"attr":"last_seen","op":"older_than","value":"7d"}`)}, &silent)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Silent iOS 17+", Kind: "dynamic",
			Rule: []byte(`{"all":[{"attr":"last_seen","op":"older_than","value":"7d"},{"attr":"os.version","op":"gte","value":"17"}]}`)}, &iosSilent)
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant, AfterHours: 24}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &marks}, nil)
		phone, id := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		for _, g := range []api.GroupView{nc, silent, iosSilent} {
			if m := f.groupMembers(g.ID); len(m) != 0 {
				t.Fatalf("group %q right after enrolment: %v", g.Name, m)
			}
		}

		later := time.Now().Add(30 * 24 * time.Hour)
		f.managementAt(later)
		f.app.hourlyManagement(f.ctx, "test")
		if c := f.complianceOf(id).Compliance; c != store.ComplianceNoncompliant {
			t.Fatalf("a month on: %s, want noncompliant", c)
		}
		for _, g := range []api.GroupView{nc, silent, iosSilent} {
			if m := f.groupMembers(g.ID); !slices.Equal(m, []string{id}) {
				t.Errorf("group %q after the hourly job: %v, want the device", g.Name, m)
			}
		}

		f.poll(phone) // back, with its passcode still off
		f.managementAt(later.Add(time.Hour))
		f.app.hourlyManagement(f.ctx, "test")
		if m := f.groupMembers(silent.ID); len(m) != 0 {
			t.Errorf("the silent group once the device checked in: %v", m)
		}
		if m := f.groupMembers(nc.ID); !slices.Equal(m, []string{id}) {
			t.Errorf("the noncompliant group once the device checked in: %v, want the device", m)
		}
	})
}

// TestFreshnessReviewComplianceChangedRegroups: ComplianceChanged, called
// where a compliance summary changes, moves the device between the groups
// on compliance at once, and leaves the other groups to their own paths.
func TestFreshnessReviewComplianceChangedRegroups(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var nc, silent api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Noncompliant", Kind: "dynamic",
			Rule: []byte(`{"attr":"compliance","op":"eq","value":"noncompliant"}`)}, &nc)
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Silent", Kind: "dynamic",
			Rule: []byte(`{"attr":"last_seen","op":"older_than","value":"7d"}`)}, &silent)
		_, id := f.enrol("corporate", "", "", nil)
		f.managementAt(time.Now().Add(30 * 24 * time.Hour))
		setCompliance := func(state string) {
			t.Helper()
			if err := st.Tx(f.ctx, func(q store.Queries) error {
				if err := q.ManagedDevices().SetCompliance(f.ctx, f.tenant, id, state, time.Now()); err != nil {
					return err
				}
				return f.app.Devices.ComplianceChanged(f.ctx, q, f.tenant, id)
			}); err != nil {
				t.Fatal(err)
			}
		}
		setCompliance(store.ComplianceNoncompliant)
		if m := f.groupMembers(nc.ID); !slices.Equal(m, []string{id}) {
			t.Errorf("the noncompliant group once marked: %v, want the device", m)
		}
		if m := f.groupMembers(silent.ID); len(m) != 0 {
			t.Errorf("the silent group, which reads no compliance: %v", m)
		}
		setCompliance(store.ComplianceCompliant)
		if m := f.groupMembers(nc.ID); len(m) != 0 {
			t.Errorf("the noncompliant group once compliant again: %v", m)
		}
	})
}

// TestLadderMarkMovesComplianceGroupsAtOnce: the ladder step that marks a
// device noncompliant puts it in the groups on compliance in the same
// transaction (the compliance engine's SummaryChanged), with no hourly job.
func TestLadderMarkMovesComplianceGroupsAtOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		var nc api.GroupView
		f.must(201, f.owner, "POST", f.path("/groups"), api.GroupRequest{Name: "Noncompliant", Kind: "dynamic",
			Rule: []byte(`{"attr":"compliance","op":"eq","value":"noncompliant"}`)}, &nc)
		marks := compliance.Ladder{{Action: compliance.StepMarkNoncompliant, AfterHours: 24}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Passcode",
			Rules: compliance.Rules{PasscodeRequired: true}, Ladder: &marks}, nil)
		_, id := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		if m := f.groupMembers(nc.ID); len(m) != 0 {
			t.Fatalf("in grace, the device is in the noncompliant group: %v", m)
		}
		f.managementAt(time.Now().Add(25 * time.Hour))
		if _, err := f.app.Compliance.RunDueSteps(f.ctx, 10); err != nil {
			t.Fatal(err)
		}
		if c := f.complianceOf(id).Compliance; c != store.ComplianceNoncompliant {
			t.Fatalf("after the mark: %s", c)
		}
		if m := f.groupMembers(nc.ID); !slices.Equal(m, []string{id}) {
			t.Errorf("the noncompliant group right after the mark: %v, want the device", m)
		}
	})
}
