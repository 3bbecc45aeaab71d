package device

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// profileActor queues profile commands in the audit log.
var profileActor = iam.Actor{Type: store.ActorSystem, ID: "profiles"}

// settled says whether the device's state h of the wanted profile cp asks
// for nothing: this version installed, queued, refused or not applicable.
// A removal of it (queued or refused) is undone by installing it again; a
// refused removal of an earlier version is tried again; a profile waiting
// to learn whether the device takes it is decided again.
func settled(h store.DeviceProfile, cp store.ConfigProfile) bool {
	if h.Digest != cp.Digest || h.Waiting() {
		return false
	}
	switch h.Status {
	case store.ProfileRemovalPending, store.ProfileRemovalFailed, store.ProfileNotApplicableRemovalFailed:
		return false
	}
	return true
}

// installOn queues cp's install on fit's device, records why the device
// does not get it, or that it waits to learn whether the device takes it.
// prev, when not nil, is the device's state of an earlier version;
// attempts counts the sends of this version that failed before (the
// hourly retry's), which a send carries on to its answer.
func (s *Service) installOn(ctx context.Context, q store.Queries, cp store.ConfigProfile, fit *deviceFit, prev *store.DeviceProfile,
	attempts int) error {
	d := fit.d
	held := prev != nil && prev.OnDevice()
	state := store.DeviceProfile{TenantID: d.TenantID, DeviceID: d.ID, ProfileID: cp.ID, Digest: cp.Digest, UpdatedAt: s.clock()}
	v, err := fit.decide(ctx, q, cp)
	if err != nil {
		return err
	}
	switch {
	case v.wait != "" && held:
		// The earlier version, and its state, stay until the device's
		// report decides: removal logic and certificates rely on that row.
		return s.noteHeldBack(ctx, q, *prev, v.wait)
	case v.wait != "":
		state.Status, state.Error = store.ProfilePending, "not sent yet: "+v.wait
		return q.DeviceProfiles().Put(ctx, state)
	case v.notApplicable != "":
		state.Status, state.Error = store.ProfileNotApplicable, "not installed: "+v.notApplicable
		if held {
			state.Attempts = attempts
			return s.removeEarlier(ctx, q, cp, d, *prev, state)
		}
		if prev != nil && prev.Status == state.Status && prev.Digest == state.Digest && prev.Error == state.Error {
			return nil // decided again, the same: its time stays that of the decision
		}
		return q.DeviceProfiles().Put(ctx, state)
	}
	payload, err := fit.contents.mobileconfig(cp)
	if apperr.IsKind(err, apperr.KindInvalid) {
		// A definition stored before a check was added: it loads, but
		// goes to no device until an admin completes it.
		state.Status, state.Error = store.ProfileFailed, "not installed: the profile does not pass Steward's checks any more ("+
			apperr.As(err).Message+"); edit the profile to fix it"
		return q.DeviceProfiles().Put(ctx, state)
	} else if err != nil {
		return err
	}
	refusal, err := fit.contents.personalRefusal(cp)
	if err != nil && !apperr.IsKind(err, apperr.KindInvalid) {
		return err
	}
	reviewed := err == nil && refusal == "" // the mdm gate's own check on personally owned devices
	state.Attempts = attempts
	cmds, err := s.mdm.EnqueueIn(ctx, q, d, []mdmproto.Request{mdmproto.InstallProfile{Payload: payload,
		ReviewedForPersonal: reviewed}}, "profile "+cp.Identifier+" assigned", profileActor)
	if err != nil {
		return s.notQueued(ctx, q, state, err)
	}
	state.Status, state.CommandID = store.ProfilePending, cmds[0].ID
	return q.DeviceProfiles().Put(ctx, state)
}

// heldBackNote begins the error of an earlier version's state while the
// current version waits: the state stays that of what is on the device, and
// says the current version is not there.
const heldBackNote = "this is an earlier version; the current one is not sent yet: "

// noteHeldBack says in prev, the state of an earlier version installed or
// queued, why the current version is not sent yet. A removal under way or
// refused keeps its own error, which already says the version is not the
// current. A refused removal's retry ends: what the device takes is decided
// when the fact waited for arrives (settled is false for such a state), and
// a retry that can send nothing meanwhile would fall due every hour.
func (s *Service) noteHeldBack(ctx context.Context, q store.Queries, prev store.DeviceProfile, wait string) error {
	if prev.Status != store.ProfileInstalled && prev.Status != store.ProfilePending {
		if prev.RetryAt.IsZero() {
			return nil
		}
		prev.RetryAt = time.Time{}
		return q.DeviceProfiles().Put(ctx, prev)
	}
	note := heldBackNote + wait
	if prev.Error == note {
		return nil
	}
	prev.Error, prev.UpdatedAt = note, s.clock()
	return q.DeviceProfiles().Put(ctx, prev)
}

// removeEarlier queues the removal of the earlier version of cp that d
// holds, as this version does not apply there (state says why), and tracks
// it as an unassignment's removal is: not_applicable once acknowledged,
// refused or not queued (a full queue) said so and tried again.
func (s *Service) removeEarlier(ctx context.Context, q store.Queries, cp store.ConfigProfile, d store.Device, prev, state store.DeviceProfile) error {
	if prev.Status == store.ProfileNotApplicableRemovalPending { // queued already; it removes whatever version is there
		state.Status, state.CommandID = store.ProfileNotApplicableRemovalPending, prev.CommandID
		return q.DeviceProfiles().Put(ctx, state)
	}
	cmds, err := s.mdm.EnqueueIn(ctx, q, d, []mdmproto.Request{mdmproto.RemoveProfile{Identifier: cp.Identifier}},
		"profile "+cp.Identifier+" no longer applies to the device", profileActor)
	if err != nil {
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Kind == apperr.KindInternal {
			return err
		}
		state.Status, state.Error = store.ProfileNotApplicableRemovalFailed, "an earlier version is still on the device, its removal not queued ("+
			ae.Message+"); "+state.Error
		s.failedAttempt(&state)
		return q.DeviceProfiles().Put(ctx, state)
	}
	state.Status, state.CommandID = store.ProfileNotApplicableRemovalPending, cmds[0].ID
	return q.DeviceProfiles().Put(ctx, state)
}

// earlierRemoved settles the device's answer to removeEarlier's command.
func (s *Service) earlierRemoved(ctx context.Context, q store.Queries, cmd store.Command, st store.DeviceProfile) error {
	if cmd.State == store.CommandAcknowledged {
		st.Status, st.Attempts = store.ProfileNotApplicable, 0
	} else {
		st.Status, st.Error = store.ProfileNotApplicableRemovalFailed, "an earlier version is still on the device, which refused to remove it ("+
			mdm.ErrorRecord(cmd.ErrorChain)+"); "+st.Error
		s.commandFailed(&st, cmd)
	}
	return q.DeviceProfiles().Put(ctx, st)
}

// notQueued records a command the device's queue refused (a full queue):
// the state fails, and the hourly retry, or the next change, tries again.
func (s *Service) notQueued(ctx context.Context, q store.Queries, state store.DeviceProfile, err error) error {
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Kind == apperr.KindInternal {
		return err
	}
	state.Status, state.Error = store.ProfileFailed, ae.Message
	s.failedAttempt(&state)
	return q.DeviceProfiles().Put(ctx, state)
}

// supervisedField is the inventory field that says whether a device is
// supervised.
const supervisedField = "os.supervised"

// sharedIPadField is the inventory field that says whether an iPad is in
// Shared iPad mode (IsMultiUser).
const sharedIPadField = "os.shared_ipad"

// notForPersonal is why a personally owned device does not take a profile
// holding a payload type not reviewed for them.
const notForPersonal = "the profile holds payloads not allowed on personally owned devices"

// profileContents reads, once per reconciliation pass, what each profile's
// content decides: the bytes a device installs, and what keeps a
// personally owned device or a Shared iPad from taking it. Reading a
// profile decrypts it (and builds a built one), so each is read once.
type profileContents struct {
	s             *Service
	mobileconfigs map[string][]byte
	personal      map[string]string // profile ID: why personally owned devices do not take it, "" when they do
	sharedIPad    map[string]string // profile ID: why a Shared iPad does not take it, "" when it does
}

func newProfileContents(s *Service) *profileContents {
	return &profileContents{s: s, mobileconfigs: map[string][]byte{}, personal: map[string]string{}, sharedIPad: map[string]string{}}
}

func (c *profileContents) mobileconfig(cp store.ConfigProfile) ([]byte, error) {
	if payload, ok := c.mobileconfigs[cp.ID]; ok {
		return payload, nil
	}
	payload, err := c.s.mobileconfig(cp)
	if err != nil {
		return nil, err
	}
	c.mobileconfigs[cp.ID] = payload
	return payload, nil
}

// personalRefusal says why a personally owned device does not take cp: a
// payload type not reviewed for them, or a key inside that would route or
// watch the employee's own traffic (a proxy, an always-on VPN); "" when it
// takes it. The keys are read from the content itself, an upload's or a
// definition's, so profiles stored before this check are held to it too.
func (c *profileContents) personalRefusal(cp store.ConfigProfile) (string, error) {
	if why, ok := c.personal[cp.ID]; ok {
		return why, nil
	}
	why := notForPersonal
	if ForPersonal(cp.PayloadTypes) {
		payload, err := c.mobileconfig(cp)
		if err != nil {
			return "", err
		}
		if why, err = payloads.PersonalRefusal(payload); err != nil {
			return "", err
		}
	}
	c.personal[cp.ID] = why
	return why, nil
}

// sharedIPadRefusal says why an iPad in Shared iPad mode does not take cp;
// "" when it does.
func (c *profileContents) sharedIPadRefusal(cp store.ConfigProfile) (string, error) {
	if why, ok := c.sharedIPad[cp.ID]; ok {
		return why, nil
	}
	payload, err := c.mobileconfig(cp)
	if err != nil {
		return "", err
	}
	why, err := payloads.SharedIPadUnavailable(payload)
	if err != nil {
		return "", err
	}
	c.sharedIPad[cp.ID] = why
	return why, nil
}

// deviceFit decides which profiles one device takes. It reads the
// device's supervision once, when a profile first depends on it, and, if
// that is unknown, the collection policy (readSupervision); an iPad's
// Shared iPad mode once, when a profile is first decided.
type deviceFit struct {
	d           store.Device
	target      payloads.Target
	contents    *profileContents
	supervision mdm.Supervision
	read        bool
	// supervisionDropped: the policy the gate applies to the device drops
	// supervision, so no report will bring it.
	supervisionDropped bool
	// sharedIPad: the iPad's last report said it is in Shared iPad mode;
	// none yet counts as not, like the commands' rules (a refused install
	// is decided again by the hourly retry, which then knows).
	sharedIPad, sharedIPadRead bool
}

// fitVerdict is a decision on one profile: empty when the device takes it.
type fitVerdict struct {
	notApplicable string // why the device does not take it
	wait          string // what Steward must learn of the device first
}

func (f *deviceFit) decide(ctx context.Context, q store.Queries, cp store.ConfigProfile) (fitVerdict, error) {
	if privacy.Ownership(f.d.Ownership).PersonallyOwned() {
		why, err := f.contents.personalRefusal(cp)
		if apperr.IsKind(err, apperr.KindInvalid) {
			return fitVerdict{}, nil // installOn records that it does not build; nothing unreviewed is sent
		}
		if err != nil {
			return fitVerdict{}, err
		}
		if why != "" {
			return fitVerdict{notApplicable: why}, nil
		}
	}
	if f.d.Platform == "" {
		// Apple's payload rules differ between a Mac and an iPhone or iPad.
		return fitVerdict{wait: "the device has not reported yet whether it is an iPhone, iPad or Mac"}, nil
	}
	t := f.target
	if why := payloads.Unavailable(cp.PayloadTypes, t); why != "" {
		return fitVerdict{notApplicable: why}, nil
	}
	if why, err := f.sharedIPadRefusal(ctx, q, cp); err != nil || why != "" {
		return fitVerdict{notApplicable: why}, err
	}
	if cp.Kind != store.ProfileBuilt { // an upload's keys are inspected only for the checks above
		return fitVerdict{}, nil
	}
	var def payloads.Definition
	if err := json.Unmarshal(cp.Definition, &def); err != nil {
		return fitVerdict{notApplicable: "its stored definition does not read: " + err.Error()}, nil
	}
	if unapplied := strings.Join(def.UnappliedSettings(t), ", "); unapplied != "" {
		// A Mac lacks some restrictions altogether; User Enrollment
		// refuses or ignores other settings.
		why := "a Mac ignores " + unapplied + ", which macOS does not have; move these settings to a profile for iPhones and iPads"
		switch {
		case t.UserEnrollment && t.Mac:
			why = "under User Enrollment a Mac refuses or ignores " + unapplied + "; move these settings to a profile for " +
				"corporate or fully enrolled Macs, or, for restrictions macOS does not have, for iPhones and iPads"
		case t.UserEnrollment:
			why = "under User Enrollment Apple refuses or ignores " + unapplied +
				"; move these settings to a profile for corporate or fully enrolled devices"
		}
		return fitVerdict{notApplicable: why}, nil
	}
	if t.UserEnrollment {
		// Never supervised; it refuses every supervised-only setting
		// Steward writes, which UnappliedSettings named.
		return fitVerdict{}, nil
	}
	needs := def.SupervisedSettings(t)
	if len(needs) == 0 {
		return fitVerdict{}, nil
	}
	if err := f.readSupervision(ctx, q); err != nil {
		return fitVerdict{}, err
	}
	settings := strings.Join(needs, ", ")
	switch f.supervision {
	case mdm.Supervised:
		return fitVerdict{}, nil
	case mdm.Unsupervised:
		return fitVerdict{notApplicable: "an iPhone or iPad applies " + settings + " only when supervised, and this device reports it is not; " +
			"assign the profile to supervised devices (Automated Device Enrollment or Apple Configurator), or move these settings to a profile of their own"}, nil
	}
	if f.supervisionDropped {
		// A promise of a report would never be kept; the next report after
		// the policy keeps it again decides (InventoryChanged).
		return fitVerdict{wait: "it sets " + settings + ", which an iPhone or iPad applies only when supervised, " +
			"and the collection policy does not keep whether a " + f.d.Ownership + " device is supervised; " +
			"keep the OS category for this class, or move these settings to a profile of their own"}, nil
	}
	return fitVerdict{wait: "it sets " + settings + ", which an iPhone or iPad applies only when supervised, " +
		"and the device has not reported yet whether it is supervised"}, nil
}

// sharedIPadRefusal says why the device, an iPad in Shared iPad mode, does
// not take cp; "" for any other device.
func (f *deviceFit) sharedIPadRefusal(ctx context.Context, q store.Queries, cp store.ConfigProfile) (string, error) {
	if f.d.Platform != "ipados" {
		return "", nil
	}
	// The profile first (cached per pass): most hold nothing a Shared iPad
	// refuses, and then no device's mode is read.
	why, err := f.contents.sharedIPadRefusal(cp)
	if apperr.IsKind(err, apperr.KindInvalid) {
		return "", nil // installOn records that it does not build
	}
	if err != nil || why == "" {
		return "", err
	}
	if !f.sharedIPadRead {
		current, err := q.Inventory().CurrentOf(ctx, f.d.TenantID, f.d.ID, []string{sharedIPadField})
		if err != nil {
			return "", err
		}
		for _, v := range current {
			if v.Field == sharedIPadField && v.Ciphertext == nil {
				_ = json.Unmarshal(v.Value, &f.sharedIPad) // anything but true is not shared
			}
		}
		f.sharedIPadRead = true
	}
	if !f.sharedIPad {
		return "", nil
	}
	return why, nil
}

// readSupervision reads the device's supervision once per reconciliation,
// and, while it is unknown, whether the policy drops it.
func (f *deviceFit) readSupervision(ctx context.Context, q store.Queries) error {
	if f.read {
		return nil
	}
	var err error
	if f.supervision, err = mdm.SupervisionOf(ctx, q, f.d); err != nil || f.supervision != mdm.SupervisionUnknown {
		f.read = err == nil
		return err
	}
	if f.supervisionDropped, err = supervisionDropped(ctx, q, f.d); err != nil {
		return err
	}
	if !f.supervisionDropped {
		// About to wait for the report that brings supervision, which
		// decides waiting profiles under the device's lock: taken here,
		// that report either committed before (and is read now) or sees
		// this wait. Without it, on PostgreSQL, the two could miss each
		// other and the profile wait for good. A policy that drops
		// supervision brings no such report: no lock.
		if _, err := q.Devices().Lock(ctx, f.d.TenantID, f.d.ID); err != nil {
			return err
		}
		if f.supervision, err = mdm.SupervisionOf(ctx, q, f.d); err != nil {
			return err
		}
	}
	f.read = true
	return nil
}

// supervisionDropped says whether the collection policy the gate applies
// to d (on a personally owned device, no wider than what its owner
// accepted) drops its supervision.
func supervisionDropped(ctx context.Context, q store.Queries, d store.Device) (bool, error) {
	field, ok := privacy.FieldByKey(supervisedField)
	if !ok {
		return false, errors.New("device: " + supervisedField + " is not in the data catalogue")
	}
	settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
	if err != nil {
		return false, err
	}
	policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
	if err != nil {
		return false, err
	}
	return policy.Mode(privacy.Ownership(d.Ownership), field.Category) == privacy.Drop, nil
}

// PlatformLearned is the mdm hook for a device that enrolled without
// naming itself: its waiting profiles, and its required apps, follow now.
func (s *Service) PlatformLearned(ctx context.Context, q store.Queries, d store.Device) error {
	return s.reconcileDevices(ctx, q, d.TenantID, []string{d.ID})
}

// targetOf is what Apple's payload rules need to know of d.
func targetOf(d store.Device) payloads.Target {
	return payloads.Target{Mac: d.Platform == "macos", UserEnrollment: d.Ownership == string(privacy.UserEnrolled)}
}
