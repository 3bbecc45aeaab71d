package mdm_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestProfileListWithoutIsManaged: macOS and supervised devices never say
// IsManaged (profile.list.yaml). A personally owned or user-enrolled Mac
// still keeps the organisation's profiles, known by the identifiers
// Steward installed there (its management profile, the profiles it
// delivered), and drops the rest, a profile Steward's delivery failed
// included; a corporate Mac and a supervised iPhone keep every profile.
// Where the device did not say, managed is left out, never stored false.
func TestProfileListWithoutIsManaged(t *testing.T) {
	for _, c := range []struct {
		name      string
		ownership privacy.Ownership
		device    func(*sim.Device)
		personal  bool
	}{
		{"personal Mac", privacy.Personal, mac, true},
		{"user-enrolled Mac", privacy.UserEnrolled, mac, true},
		{"corporate Mac", privacy.Corporate, mac, false},
		{"supervised iPhone", privacy.Corporate, supervised, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
				f := newFixture(t, st)
				f.publish(c.ownership)
				ts := f.serve()
				subject := ""
				if c.personal {
					subject = f.subject("erika@acme.test")
				}
				d, dev := f.polled(ts, c.ownership, subject, c.device)
				enrolment, err := f.svc.EnrolmentProfileIdentifier(f.ctx, f.st.Read(), dev)
				if err != nil {
					t.Fatal(err)
				}

				// As the simulator answers: its management profile, without IsManaged.
				if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.ProfileList{}, "a reason", admin); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Poll(f.ctx); err != nil {
					t.Fatal(err)
				}
				if got := storedProfiles(t, f, dev.ID); !slices.Equal(got, []string{enrolment}) {
					t.Errorf("the device's own answer stored %v, want its management profile %s", got, enrolment)
				}

				f.deliveredProfile(dev.ID, "com.acme.wifi", store.ProfileInstalled)
				f.deliveredProfile(dev.ID, "com.acme.vpn", store.ProfileFailed)
				answer := map[string]any{"ProfileList": []any{
					map[string]any{"PayloadIdentifier": enrolment, "PayloadDisplayName": "ACME device management"},
					map[string]any{"PayloadIdentifier": "com.acme.wifi", "PayloadDisplayName": "ACME Wi-Fi"},
					map[string]any{"PayloadIdentifier": "com.acme.vpn", "PayloadDisplayName": "ACME VPN"},
					map[string]any{"PayloadIdentifier": "org.erika.school", "PayloadDisplayName": "Erika's school Wi-Fi"},
				}}
				if state := f.answer(t, d, dev.ID, mdmproto.ProfileList{}, answer); state != store.CommandAcknowledged {
					t.Fatalf("the profile list ended %s", state)
				}
				want := []string{enrolment, "com.acme.wifi", "com.acme.vpn", "org.erika.school"}
				if c.personal {
					want = want[:2]
				}
				if got := storedProfiles(t, f, dev.ID); !slices.Equal(got, want) {
					t.Errorf("stored %v, want %v", got, want)
				}
				if raw := string(f.fields(dev.ID)["security.profiles"].Value); strings.Contains(raw, `"managed"`) {
					t.Errorf("a device that did not say IsManaged has it stored: %s", raw)
				}
			})
		})
	}
}

// storedProfiles returns the identifiers of the device's security.profiles.
func storedProfiles(t *testing.T, f *fixture, deviceID string) []string {
	t.Helper()
	var kept []mdm.InstalledProfile
	if err := json.Unmarshal(f.fields(deviceID)["security.profiles"].Value, &kept); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, p := range kept {
		ids = append(ids, p.Identifier)
	}
	return ids
}

// deliveredProfile records a configuration profile of the tenant with
// identifier, in state status on the device, as profile delivery does.
func (f *fixture) deliveredProfile(deviceID, identifier, status string) {
	f.t.Helper()
	err := f.st.Tx(f.ctx, func(q store.Queries) error {
		p := store.ConfigProfile{ID: store.NewID(), TenantID: f.tenant, Name: identifier, Identifier: identifier, Kind: store.ProfileCustom,
			Platform: "apple", Digest: "d1", CreatedBy: "test", CreatedAt: f.now, UpdatedAt: f.now}
		if err := q.Profiles().Create(f.ctx, p); err != nil {
			return err
		}
		return q.DeviceProfiles().Put(f.ctx, store.DeviceProfile{TenantID: f.tenant, DeviceID: deviceID, ProfileID: p.ID, Digest: p.Digest,
			Status: status, CommandID: store.NewID(), UpdatedAt: f.now})
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// TestUserChannelProfileListKeepsTheDevicesProfiles: a ProfileList
// answered on a user channel lists one account's profiles, not the
// device's: it is acknowledged, and the device's security.profiles stays
// as its device channel reported it. One that does not decode still fails.
func TestUserChannelProfileListKeepsTheDevicesProfiles(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		f.publish(privacy.Corporate)
		ts := f.serve()
		d, dev := f.polled(ts, privacy.Corporate, "", mac)
		if state := f.answer(t, d, dev.ID, mdmproto.ProfileList{}, map[string]any{"ProfileList": []any{
			map[string]any{"PayloadIdentifier": "com.acme.wifi", "PayloadDisplayName": "ACME Wi-Fi"}}}); state != store.CommandAcknowledged {
			t.Fatalf("the device's profile list ended %s", state)
		}
		jane := d.NewUser("jdoe", "Jane Doe")
		if err := jane.LogIn(f.ctx); err != nil {
			t.Fatal(err)
		}
		channels, err := f.svc.UserChannels(f.ctx, f.tenant, dev.ID)
		if err != nil || len(channels) != 1 {
			t.Fatalf("user channels %+v, %v", channels, err)
		}
		for _, c := range []struct {
			list  any
			state string
		}{
			{[]any{map[string]any{"PayloadIdentifier": "org.jane.vpn", "PayloadDisplayName": "Jane's VPN"}}, store.CommandAcknowledged},
			{"not a list", store.CommandError},
		} {
			if _, err := f.svc.EnqueueForUser(f.ctx, f.tenant, dev.ID, channels[0].ID, mdmproto.ProfileList{}, "", admin); err != nil {
				t.Fatal(err)
			}
			sent := command(t, jane, map[string]any{"Status": "Idle"})
			if _, err := jane.Send(f.ctx, map[string]any{"Status": "Acknowledged", "CommandUUID": sent.CommandUUID,
				"RequestType": sent.RequestType, "ProfileList": c.list}); err != nil {
				t.Fatal(err)
			}
			got, err := f.st.Read().Commands().Get(f.ctx, f.tenant, sent.CommandUUID)
			if err != nil || got.State != c.state {
				t.Errorf("the user channel's profile list (%v) ended %s, %v; want %s", c.list, got.State, err, c.state)
			}
			if ids := storedProfiles(t, f, dev.ID); !slices.Equal(ids, []string{"com.acme.wifi"}) {
				t.Errorf("after a user channel's profile list the device's profiles are %v, want the device channel's", ids)
			}
		}
	})
}
