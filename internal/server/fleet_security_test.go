package server

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPasscodeAndEncryptionOnEachPlatform: the passcode and encryption
// rules read what each kind of device reports (information.security.yaml).
// An iPhone without a passcode has no data protection; a User Enrollment
// says whether its passcode meets the rules but never whether one is set,
// so its data protection is decided only when its hardware lacks it; a Mac reports FileVault and no passcode, so the passcode rule
// does not apply to it.
func TestPasscodeAndEncryptionOnEachPlatform(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFleet(t, st)
		ladder := compliance.Ladder{{Action: compliance.StepMarkNoncompliant}}
		f.must(201, f.owner, "POST", f.path("/compliance/policies"), compliance.PolicyInput{Name: "Baseline",
			Rules: compliance.Rules{PasscodeRequired: true, EncryptionRequired: true}, Ladder: &ladder}, nil)
		f.must(201, f.owner, "POST", f.path("/privacy/notices"), api.NoticeRequest{Ownership: "user_enrolled",
			Translations: []privacy.Translation{{Language: "en", Title: "Your iPhone", Body: "What we manage."}}}, nil)
		erika, err := f.app.Privacy.CreateSubject(f.ctx, f.tenant, privacy.SubjectInput{Email: "erika@fleet.test"}, iam.SystemActor)
		if err != nil {
			t.Fatal(err)
		}
		_, phone := f.enrol("corporate", "", "", nil)
		_, bare := f.enrol("corporate", "", "", func(d *sim.Device) { d.NoPasscode = true })
		byodDevice, byod := f.enrol("user_enrolled", erika.ID, "", func(d *sim.Device) { userEnrolment(d); d.Account = "erika@fleet.test" })
		// What Steward stored from the hardware alone before it knew
		// better: the device never reports anything to replace it.
		_, staleByod := f.enrol("user_enrolled", erika.ID, "", func(d *sim.Device) {
			userEnrolment(d)
			d.EnrollmentID, d.Account = "5A2D1EF6B2C3D4E5", "erika@fleet.test"
		})
		// Hardware without file-level encryption has no data protection,
		// which a User Enrollment reports.
		_, weakByod := f.enrol("user_enrolled", erika.ID, "", func(d *sim.Device) {
			userEnrolment(d)
			d.EnrollmentID, d.Account, d.BlockEncryptionOnly = "6B3E2F07C3D4E5F6", "erika@fleet.test", true
		})
		if err := st.Tx(f.ctx, func(q store.Queries) error {
			_, err := f.app.Privacy.Gate().Admit(f.ctx, q, privacy.Report{TenantID: f.tenant, DeviceID: staleByod, Source: "test",
				Values: []privacy.Observation{{Field: "security.encrypted", Value: true}}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, laptop := f.enrol("corporate", "", "", mac)
		_, openLaptop := f.enrol("corporate", "", "", func(d *sim.Device) { mac(d); d.FileVaultOff = true })

		for _, c := range []struct {
			name, id, compliance string
			encrypted            string // the stored security.encrypted, "" when none
			violations           map[string]string
		}{
			{"iPhone with a passcode", phone, store.ComplianceCompliant, "true", nil},
			{"iPhone without a passcode", bare, store.ComplianceNoncompliant, "false",
				map[string]string{"passcode": "Set a passcode", "encryption": "Set a passcode"}},
			{"User Enrollment", byod, store.ComplianceUnknown, "",
				map[string]string{"encryption": "User Enrollment"}},
			{"User Enrollment, an old value stored", staleByod, store.ComplianceUnknown, "true",
				map[string]string{"encryption": "User Enrollment"}},
			{"User Enrollment, no file-level encryption", weakByod, store.ComplianceNoncompliant, "false",
				map[string]string{"encryption": "HardwareEncryptionCaps"}},
			{"Mac with FileVault", laptop, store.ComplianceCompliant, "true", nil},
			{"Mac without FileVault", openLaptop, store.ComplianceNoncompliant, "false", map[string]string{"encryption": "FileVault"}},
		} {
			if got := f.securityEncrypted(c.id); got != c.encrypted {
				t.Errorf("%s: security.encrypted %q, want %q", c.name, got, c.encrypted)
			}
			var dc api.DeviceComplianceView
			f.must(200, f.owner, "GET", f.path("/devices/"+c.id+"/compliance"), nil, &dc)
			if dc.Compliance != c.compliance || len(dc.Standings) != 1 {
				t.Errorf("%s: %q, want %q: %+v", c.name, dc.Compliance, c.compliance, dc.Standings)
				continue
			}
			got := map[string]string{}
			for _, v := range dc.Standings[0].Violations {
				got[v.Rule] = v.Reason
			}
			if len(got) != len(c.violations) {
				t.Errorf("%s: violations %v, want %v", c.name, got, c.violations)
			}
			for rule, part := range c.violations {
				if !strings.Contains(got[rule], part) {
					t.Errorf("%s: %s violation %q, want it to say %q", c.name, rule, got[rule], part)
				}
			}
		}
		// Conditional access refuses the User Enrollment, saying why rather
		// than asking the employee to wait for a check that never comes.
		access, err := f.app.Compliance.CheckAccess(f.ctx, f.tenant, byodDevice.Certificate(), "")
		if err != nil || access.Allowed || len(access.Reasons) != 1 || !strings.Contains(access.Reasons[0], "cannot be checked") {
			t.Errorf("access of the User Enrollment: %+v, %v; want refused with the rule's own reason", access, err)
		}
	})
}

// securityEncrypted is a device's stored security.encrypted, "" when none.
func (f *testFleet) securityEncrypted(id string) string {
	f.t.Helper()
	var v api.DeviceDetailView
	f.must(200, f.owner, "GET", f.path("/devices/"+id), nil, &v)
	for _, fv := range v.Fields {
		if fv.Field == "security.encrypted" {
			return string(fv.Value)
		}
	}
	return ""
}
