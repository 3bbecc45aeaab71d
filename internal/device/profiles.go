package device

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// ProfileInput creates or replaces a profile: a typed definition, or an
// uploaded .mobileconfig (Custom, base64 in JSON).
type ProfileInput struct {
	Name       string          `json:"name"`
	Definition json.RawMessage `json:"definition,omitempty"`
	Custom     []byte          `json:"custom,omitempty"`
}

// personalSafePayloads are the payload types a personally owned device may
// receive: they configure access to work resources and restrict managed
// data, but cannot trust a root certificate or reach the employee's own
// data. Wi-Fi and VPN payloads can also carry a proxy or an always-on
// tunnel: delivery reads their keys too (payloads.PersonalRefusal). A User
// Enrollment takes fewer: Apple's own list, which payloads.Unavailable
// applies.
var personalSafePayloads = []string{
	"com.apple.wifi.managed", "com.apple.vpn.managed", "com.apple.mail.managed", "com.apple.eas.account",
	"com.apple.mobiledevice.passwordpolicy", "com.apple.applicationaccess", "com.apple.security.scep",
	"com.apple.security.pkcs12", "com.apple.webClip.managed",
}

// ForPersonal reports whether every payload type is safe for personally
// owned devices. It is the first half of the check: a profile that passes
// still goes to them only when its keys pass payloads.PersonalRefusal.
func ForPersonal(types []string) bool {
	for _, t := range types {
		if !slices.Contains(personalSafePayloads, t) {
			return false
		}
	}
	return len(types) > 0
}

func profileAD(tenantID, profileID string) []byte {
	return []byte("config-profile:" + tenantID + ":" + profileID)
}

// prepared is a profile ready to store: public part, sealed part.
type prepared struct {
	identifier string
	kind       string
	public     []byte
	secret     []byte // secrets JSON, or the whole custom file
	types      []string
}

// prepare validates the input. stored, when updating a built profile,
// supplies the secrets an admin left redacted.
func prepare(in ProfileInput, stored *payloads.Definition) (prepared, error) {
	if (len(in.Definition) == 0) == (len(in.Custom) == 0) {
		return prepared{}, apperr.Invalid("give either a definition or a custom profile")
	}
	if len(in.Custom) > 0 {
		c, err := payloads.ValidateCustom(in.Custom, mdmproto.EnrolmentIdentifierRoot)
		if err != nil {
			return prepared{}, err
		}
		return prepared{identifier: c.Identifier, kind: store.ProfileCustom, secret: in.Custom, types: c.PayloadTypes}, nil
	}
	def, err := payloads.ParseDefinition(in.Definition)
	if err != nil {
		return prepared{}, err
	}
	if payloads.Reserved(def.Identifier, mdmproto.EnrolmentIdentifierRoot) {
		return prepared{}, apperr.Invalid("identifiers under %s are reserved for Steward's management profiles", mdmproto.EnrolmentIdentifierRoot)
	}
	if stored != nil {
		if def, err = payloads.MergeSecrets(def, *stored); err != nil {
			return prepared{}, err
		}
	}
	built, err := def.Build() // every secret present, every reference resolved
	if err != nil {
		return prepared{}, err
	}
	summary, err := payloads.ValidateCustom(built, mdmproto.EnrolmentIdentifierRoot)
	if err != nil {
		return prepared{}, err
	}
	public, secrets := def.SplitSecrets()
	p := prepared{identifier: def.Identifier, kind: store.ProfileBuilt, types: summary.PayloadTypes}
	if p.public, err = json.Marshal(public); err != nil {
		return prepared{}, err
	}
	if p.secret, err = json.Marshal(secrets); err != nil {
		return prepared{}, err
	}
	return p, nil
}

// CreateProfile stores a profile; assign it to groups to deploy it.
func (s *Service) CreateProfile(ctx context.Context, tenantID string, in ProfileInput, actor iam.Actor) (store.ConfigProfile, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return store.ConfigProfile{}, apperr.Invalid("a profile needs a name of 1 to 100 characters")
	}
	p, err := prepare(in, nil)
	if err != nil {
		return store.ConfigProfile{}, err
	}
	now := s.clock()
	cp := store.ConfigProfile{ID: store.NewID(), TenantID: tenantID, Name: name, Identifier: p.identifier, Kind: p.kind, Platform: "apple",
		Definition: p.public, Digest: store.NewID(), PayloadTypes: p.types, CreatedBy: actor.Ref(), CreatedAt: now, UpdatedAt: now}
	if cp.Sealed, err = s.sealer.Seal(p.secret, profileAD(tenantID, cp.ID)); err != nil {
		return store.ConfigProfile{}, err
	}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		if err := q.Profiles().Create(ctx, cp); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("a profile with identifier %q exists already", cp.Identifier)
			}
			return err
		}
		e := actor.Entry(tenantID, "device.profile.create", "profile", cp.ID, audit.OutcomeSuccess)
		e.Details = map[string]any{"kind": cp.Kind, "payload_types": cp.PayloadTypes}
		return audit.Append(ctx, q, e)
	})
	return cp, err
}

// UpdateProfile replaces a profile's content (same identifier); devices
// that hold it get the new version.
func (s *Service) UpdateProfile(ctx context.Context, tenantID, profileID string, in ProfileInput, actor iam.Actor) (store.ConfigProfile, error) {
	var out store.ConfigProfile
	err := s.st.Tx(ctx, func(q store.Queries) error {
		cp, err := s.profile(ctx, q, tenantID, profileID)
		if err != nil {
			return err
		}
		var stored *payloads.Definition
		if cp.Kind == store.ProfileBuilt && len(in.Definition) > 0 {
			def, err := s.openDefinition(cp)
			if err != nil {
				return err
			}
			stored = &def
		}
		p, err := prepare(in, stored)
		if err != nil {
			return err
		}
		if p.identifier != cp.Identifier {
			return apperr.Invalid("a profile's identifier cannot change (it is %q); create a new profile", cp.Identifier)
		}
		if name := strings.TrimSpace(in.Name); name != "" {
			cp.Name = name
		}
		cp.Kind, cp.Definition, cp.PayloadTypes, cp.Digest, cp.UpdatedAt = p.kind, p.public, p.types, store.NewID(), s.clock()
		if cp.Sealed, err = s.sealer.Seal(p.secret, profileAD(tenantID, cp.ID)); err != nil {
			return err
		}
		if err := q.Profiles().Update(ctx, cp); err != nil {
			return err
		}
		if err := audit.Append(ctx, q, actor.Entry(tenantID, "device.profile.update", "profile", cp.ID, audit.OutcomeSuccess)); err != nil {
			return err
		}
		out = cp
		return s.reconcileProfile(ctx, q, cp)
	})
	return out, err
}

// DeleteProfile removes the profile from every device holding it and
// deletes it.
func (s *Service) DeleteProfile(ctx context.Context, tenantID, profileID string, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		cp, err := s.profile(ctx, q, tenantID, profileID)
		if err != nil {
			return err
		}
		page := store.Page{Limit: 1000}
		for {
			states, err := q.DeviceProfiles().ForProfile(ctx, tenantID, cp.ID, page)
			if err != nil {
				return err
			}
			for _, st := range states {
				if st.OnDevice() {
					if err := s.removeFrom(ctx, q, cp, st.DeviceID, 0); err != nil {
						return err
					}
				}
			}
			if len(states) < page.Limit {
				break
			}
			page.After = states[len(states)-1].DeviceID
		}
		if err := q.Profiles().Delete(ctx, tenantID, cp.ID); err != nil {
			return err
		}
		return audit.Append(ctx, q, actor.Entry(tenantID, "device.profile.delete", "profile", cp.ID, audit.OutcomeSuccess))
	})
}

// AssignProfile targets a profile at a group (assign) or stops (unassign);
// members get it installed or removed.
func (s *Service) AssignProfile(ctx context.Context, tenantID, profileID, groupID string, assign bool, actor iam.Actor) error {
	return s.st.Tx(ctx, func(q store.Queries) error {
		cp, err := s.profile(ctx, q, tenantID, profileID)
		if err != nil {
			return err
		}
		if _, err := s.group(ctx, q, tenantID, groupID); err != nil {
			return err
		}
		action := "device.profile.assign"
		if assign {
			err = q.Profiles().Assign(ctx, tenantID, profileID, groupID, s.clock())
		} else {
			action = "device.profile.unassign"
			err = q.Profiles().Unassign(ctx, tenantID, profileID, groupID)
		}
		if err != nil {
			return err
		}
		e := actor.Entry(tenantID, action, "profile", cp.ID, audit.OutcomeSuccess)
		e.Details = map[string]any{"group": groupID}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
		members, err := q.Groups().AllMembers(ctx, tenantID, groupID)
		if err != nil {
			return err
		}
		return s.reconcileDevices(ctx, q, tenantID, members)
	})
}

func (s *Service) profile(ctx context.Context, q store.Queries, tenantID, profileID string) (store.ConfigProfile, error) {
	cp, err := q.Profiles().Get(ctx, tenantID, profileID)
	if errors.Is(err, store.ErrNotFound) {
		return cp, apperr.NotFound("profile")
	}
	return cp, err
}

// openDefinition returns a built profile's full definition, secrets in.
func (s *Service) openDefinition(cp store.ConfigProfile) (payloads.Definition, error) {
	var def payloads.Definition
	if err := json.Unmarshal(cp.Definition, &def); err != nil {
		return def, err
	}
	raw, err := s.sealer.Open(cp.Sealed, profileAD(cp.TenantID, cp.ID))
	if err != nil {
		return def, err
	}
	var secrets map[string][]byte
	if err := json.Unmarshal(raw, &secrets); err != nil {
		return def, err
	}
	return def.WithSecrets(secrets)
}

// mobileconfig builds the bytes a device installs.
func (s *Service) mobileconfig(cp store.ConfigProfile) ([]byte, error) {
	if cp.Kind == store.ProfileCustom {
		return s.sealer.Open(cp.Sealed, profileAD(cp.TenantID, cp.ID))
	}
	def, err := s.openDefinition(cp)
	if err != nil {
		return nil, err
	}
	return def.Build()
}

// PublicDefinition returns what the API may show of a profile: the
// definition with every secret replaced by a marker; nothing of a custom
// upload but its identifier and payload types.
func PublicDefinition(cp store.ConfigProfile) json.RawMessage {
	if cp.Kind == store.ProfileCustom || len(cp.Definition) == 0 {
		return nil
	}
	return json.RawMessage(cp.Definition)
}

// reconcileProfile re-deploys a changed profile to its groups' members.
func (s *Service) reconcileProfile(ctx context.Context, q store.Queries, cp store.ConfigProfile) error {
	groups, err := q.Profiles().Groups(ctx, cp.TenantID, cp.ID)
	if err != nil {
		return err
	}
	var ids []string
	for _, g := range groups {
		members, err := q.Groups().AllMembers(ctx, cp.TenantID, g)
		if err != nil {
			return err
		}
		ids = append(ids, members...)
	}
	slices.Sort(ids)
	return s.reconcileDevices(ctx, q, cp.TenantID, slices.Compact(ids))
}

// reconcileDevices brings each device's profiles and required apps to what
// its groups ask (missing or outdated ones installed, ones no group asks
// for removed), then tells MembershipChanged.
func (s *Service) reconcileDevices(ctx context.Context, q store.Queries, tenantID string, deviceIDs []string) error {
	if err := s.reconcileProfiles(ctx, q, tenantID, deviceIDs, reconcilePass{}); err != nil {
		return err
	}
	if s.MembershipChanged == nil || len(deviceIDs) == 0 {
		return nil
	}
	return s.MembershipChanged(ctx, q, tenantID, deviceIDs)
}

// reconcilePass says what a reconciliation reconsiders besides the states
// a change left unsettled.
type reconcilePass struct {
	// redecide: a fact that decides whether the device takes a profile
	// changed, so states not applicable are decided again.
	redecide bool
	// retryDue, when set, makes the pass the hourly retry: it sends again
	// only the failed states due by then, counting on their attempts.
	retryDue time.Time
}

// due says whether the retry pass sends h again.
func (p reconcilePass) due(h store.DeviceProfile) bool {
	return !h.RetryAt.IsZero() && !h.RetryAt.After(p.retryDue)
}

// reconsiders says whether a pass that is not a retry decides h again
// although it is settled.
func (p reconcilePass) reconsiders(h store.DeviceProfile) bool {
	return p.redecide && (h.Status == store.ProfileNotApplicable || h.Status == store.ProfileNotApplicableRemovalPending)
}

func (s *Service) reconcileProfiles(ctx context.Context, q store.Queries, tenantID string, deviceIDs []string, pass reconcilePass) error {
	retrying := !pass.retryDue.IsZero()
	contents := newProfileContents(s)
	for _, id := range deviceIDs {
		d, err := q.Devices().Get(ctx, tenantID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if d.State != store.DeviceEnrolled {
			continue // profiles follow once it enrols
		}
		groups, err := q.Groups().GroupsOf(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if d.Platform != "" && !retrying { // apps follow once the platform is known (PlatformLearned)
			if err := s.installRequiredApps(ctx, q, d, groups); err != nil {
				return err
			}
		}
		want := map[string]store.ConfigProfile{}
		if len(groups) > 0 {
			ps, err := q.Profiles().ForGroups(ctx, tenantID, groups)
			if err != nil {
				return err
			}
			for _, p := range ps {
				want[p.ID] = p
			}
		}
		have, err := q.DeviceProfiles().ForDevice(ctx, tenantID, id)
		if err != nil {
			return err
		}
		held := map[string]store.DeviceProfile{}
		for _, h := range have {
			held[h.ProfileID] = h
		}
		fit := &deviceFit{d: d, target: targetOf(d), contents: contents}
		for pid, cp := range want {
			h, ok := held[pid]
			switch {
			case retrying && (!ok || !pass.due(h)):
				continue
			case !retrying && ok && settled(h, cp) && !pass.reconsiders(h):
				continue
			}
			var prev *store.DeviceProfile
			attempts := 0 // a change starts the count again
			if ok {
				prev = &h
				if retrying && h.Digest == cp.Digest {
					attempts = h.Attempts
				}
			}
			if err := s.installOn(ctx, q, cp, fit, prev, attempts); err != nil {
				return err
			}
		}
		for pid, h := range held {
			if _, ok := want[pid]; ok || h.Status == store.ProfileRemovalPending || (retrying && !pass.due(h)) {
				continue
			}
			if h.Status == store.ProfileNotApplicableRemovalPending {
				// The removal under way serves the unassignment too: its
				// acknowledgement now ends the state.
				h.Status, h.Error, h.UpdatedAt = store.ProfileRemovalPending, "", s.clock()
				if err := q.DeviceProfiles().Put(ctx, h); err != nil {
					return err
				}
				continue
			}
			cp, err := q.Profiles().Get(ctx, tenantID, pid)
			if errors.Is(err, store.ErrNotFound) {
				if err := q.DeviceProfiles().Delete(ctx, tenantID, id, pid); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if !h.OnDevice() {
				if err := q.DeviceProfiles().Delete(ctx, tenantID, id, pid); err != nil { // never installed
					return err
				}
				continue
			}
			attempts := 0
			if retrying {
				attempts = h.Attempts
			}
			if err := s.removeFrom(ctx, q, cp, id, attempts); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeFrom queues cp's removal from the device. attempts counts the
// removals that failed before; set, this is the hourly retry, and a
// refused queue (a full one) is one more failure rather than an error: no
// admin's change waits on it.
func (s *Service) removeFrom(ctx context.Context, q store.Queries, cp store.ConfigProfile, deviceID string, attempts int) error {
	d, err := q.Devices().Get(ctx, cp.TenantID, deviceID)
	if err != nil {
		return err
	}
	if d.State != store.DeviceEnrolled {
		return q.DeviceProfiles().Delete(ctx, cp.TenantID, deviceID, cp.ID)
	}
	state := store.DeviceProfile{TenantID: cp.TenantID, DeviceID: deviceID, ProfileID: cp.ID, Digest: cp.Digest,
		Attempts: attempts, UpdatedAt: s.clock()}
	cmds, err := s.mdm.EnqueueIn(ctx, q, d, []mdmproto.Request{mdmproto.RemoveProfile{Identifier: cp.Identifier}},
		"profile "+cp.Identifier+" unassigned", profileActor)
	var ae *apperr.Error
	if err != nil && attempts > 0 && errors.As(err, &ae) && ae.Kind != apperr.KindInternal {
		state.Status, state.Error = store.ProfileRemovalFailed, "the removal was not queued ("+ae.Message+")"
		s.failedAttempt(&state)
		return q.DeviceProfiles().Put(ctx, state)
	}
	if err != nil {
		return err
	}
	state.Status, state.CommandID = store.ProfileRemovalPending, cmds[0].ID
	return q.DeviceProfiles().Put(ctx, state)
}

// CommandFinished is the mdm hook for profile commands: the device's
// answer to an install or removal becomes the profile's state there.
func (s *Service) CommandFinished(ctx context.Context, q store.Queries, cmd store.Command) error {
	if cmd.RequestType != string(mdmproto.RequestInstallProfile) && cmd.RequestType != string(mdmproto.RequestRemoveProfile) {
		return nil
	}
	st, err := q.DeviceProfiles().ByCommand(ctx, cmd.TenantID, cmd.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // superseded, or the profile was deleted
	}
	if err != nil {
		return err
	}
	st.UpdatedAt, st.RetryAt = s.clock(), time.Time{}
	if st.Status == store.ProfileNotApplicableRemovalPending {
		return s.earlierRemoved(ctx, q, cmd, st)
	}
	removal := st.Status == store.ProfileRemovalPending
	switch {
	case cmd.State == store.CommandAcknowledged && removal:
		return q.DeviceProfiles().Delete(ctx, cmd.TenantID, cmd.DeviceID, st.ProfileID)
	case cmd.State == store.CommandAcknowledged:
		st.Status, st.Attempts = store.ProfileInstalled, 0
		if !strings.HasPrefix(st.Error, heldBackNote) { // a newer version still waits
			st.Error = ""
		}
	case removal:
		st.Status, st.Error = store.ProfileRemovalFailed, mdm.ErrorRecord(cmd.ErrorChain)
		s.commandFailed(&st, cmd)
	default:
		st.Status, st.Error = store.ProfileFailed, mdm.ErrorRecord(cmd.ErrorChain)
		s.commandFailed(&st, cmd)
	}
	return q.DeviceProfiles().Put(ctx, st)
}

// commandFailed counts a failed send on st when the device refused the
// command or never answered it (mdm abandons it as an error), so the
// hourly retry sends it again. A cancelled one is not: an admin withdrew
// it, and a retry would override them; it waits for the next change.
func (s *Service) commandFailed(st *store.DeviceProfile, cmd store.Command) {
	if cmd.State == store.CommandError {
		s.failedAttempt(st)
	}
}
