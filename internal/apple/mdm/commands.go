package mdm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// commandAD binds a sealed command payload to its command.
func commandAD(id string) []byte { return []byte("mdm-command:" + id) }

// DeviceInformationQueries returns the DeviceInformation queries the
// collection policy allows for a device: Steward never asks for what it
// would only drop, nor a User Enrollment for what Apple keeps from it. The
// list comes from the data catalogue's sources.
func DeviceInformationQueries(p privacy.Policy, o privacy.Ownership) []string {
	var out []string
	for _, f := range privacy.Catalogue {
		if p.Mode(o, f.Category) == privacy.Drop {
			continue
		}
		for _, src := range f.Sources {
			if src.Protocol != "apple-mdm" || src.Payload != "DeviceInformation" || slices.Contains(out, src.Key) {
				continue
			}
			if o == privacy.UserEnrolled && !mdmproto.AnsweredOnUserEnrollment(src.Key) {
				continue
			}
			out = append(out, src.Key)
		}
	}
	slices.Sort(out)
	return out
}

// DeviceFacts is what RequestFor needs to know of a device beyond its
// record; prepare reads each only for the commands that need it.
type DeviceFacts struct {
	// Supervised: the device's last DeviceInformation said IsSupervised.
	Supervised bool
	// SharedIPad: the device's last DeviceInformation said IsMultiUser.
	SharedIPad bool
	// OSVersion: the OS version the device last reported; "" when it has
	// not (then no version rule refuses anything: runsAtLeast).
	OSVersion string
	// FullWipeConsented: the employee allows a full wipe of this device
	// (wipeConsented).
	FullWipeConsented bool
	// GrantedRights are the access rights the device's enrolment profile
	// granted, when its DeviceInformation queries may need more; 0 when no
	// query is known to be beyond them (grantedRights).
	GrantedRights mdmproto.AccessRights
}

// RequestFor adapts a request to one device: queries trimmed to the policy,
// app, profile and certificate lists limited to what the organisation
// manages on personal devices, App Store apps for User Enrollment sent as
// Apps and Books assignments, and the ownership
// rules (no location or lost mode outside corporate devices, no full wipe
// unless the policy and, on personal devices, the employee allowed it).
// Then Apple's rules for the device's system, enrolment and supervision
// (commandSupport): a command the device would refuse is refused here,
// keys its system does not use are left out, and an app goes to a Mac the
// way macOS installs a managed one (appForMac).
func RequestFor(req mdmproto.Request, d store.Device, settings privacy.Settings, facts DeviceFacts) (mdmproto.Request, error) {
	r, err := ownershipRules(req, d, settings, facts.FullWipeConsented)
	if err != nil {
		return nil, err
	}
	if facts.OSVersion != "" {
		d.OSVersion = facts.OSVersion
	}
	if err := checkSupport(r.RequestType(), d, facts); err != nil {
		return nil, err
	}
	if di, ok := r.(mdmproto.DeviceInformation); ok && facts.GrantedRights != 0 {
		// The device would leave them unanswered: its rights are those of
		// its enrolment, whatever the policy allows since.
		missing := ungrantedQueries(di.Queries, facts.GrantedRights)
		di.Queries = slices.DeleteFunc(slices.Clone(di.Queries), func(q string) bool { return slices.Contains(missing, q) })
		if len(di.Queries) == 0 {
			return nil, apperr.Conflict("this device's enrolment does not grant the access rights the queries %v need: "+
				"it must enrol again to grant them", missing).With("reason", SkipUnsupported)
		}
		r = di
	}
	return forPlatform(r, d, facts.SharedIPad)
}

// ungrantedQueries are the queries that need an access right beyond granted.
func ungrantedQueries(queries []string, granted mdmproto.AccessRights) []string {
	var out []string
	for _, q := range queries {
		if mdmproto.QueryRight(q)&^granted != 0 {
			out = append(out, q)
		}
	}
	return out
}

// grantedRights reads the access rights d's enrolment profile granted, but
// only when the queries r asks (or the policy's, for none named) need more
// than every enrolment of d's ownership grants: a personal device's
// network information right comes with the policy in force when it
// enrolled (accessRights), corporate and shared devices get every right,
// and User Enrollment ignores them. So most inventory refreshes read
// nothing. 0 when nothing is read or none is recorded; missing lists the
// queries the rights leave out.
func (s *Service) grantedRights(ctx context.Context, q store.Queries, d store.Device, r mdmproto.DeviceInformation,
	policy privacy.Policy) (granted mdmproto.AccessRights, missing []string, err error) {
	o := privacy.Ownership(d.Ownership)
	if o != privacy.Personal {
		return 0, nil, nil
	}
	queries := r.Queries
	if len(queries) == 0 {
		queries = DeviceInformationQueries(policy, o)
	}
	if len(ungrantedQueries(queries, personalRights)) == 0 {
		return 0, nil, nil
	}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	e, err := q.Enrolments().Get(ctx, d.TenantID, ch.EnrolmentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && e.AccessRights == 0) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	granted = mdmproto.AccessRights(e.AccessRights)
	return granted, ungrantedQueries(queries, granted), nil
}

// ownershipRules is RequestFor's part that the device's ownership and the
// collection policy decide.
func ownershipRules(req mdmproto.Request, d store.Device, settings privacy.Settings, fullWipeConsented bool) (mdmproto.Request, error) {
	o := privacy.Ownership(d.Ownership)
	switch r := req.(type) {
	case mdmproto.DeviceInformation:
		allowed := DeviceInformationQueries(settings.Policy, o)
		if len(r.Queries) == 0 {
			r.Queries = allowed
		} else {
			r.Queries = slices.DeleteFunc(slices.Clone(r.Queries), func(q string) bool { return !slices.Contains(allowed, q) })
		}
		if o.PersonallyOwned() && slices.Contains(r.Queries, "ServiceSubscriptions") {
			// It would have the device send every line it has (the
			// employee's private one too), its eSIM's EID and its lines'
			// labels, which Steward would only throw away: while iOS
			// answers them, the deprecated queries the policy allows
			// stand in for it.
			r.Queries = slices.DeleteFunc(slices.Clone(r.Queries), func(q string) bool { return q == "ServiceSubscriptions" })
			for _, q := range deprecatedTelephonyQueries {
				if slices.Contains(allowed, q) && !slices.Contains(r.Queries, q) {
					r.Queries = append(r.Queries, q)
				}
			}
		}
		if schemaOS(d.Platform) == "" {
			// Asked only to learn whether it is an iPhone, iPad or Mac
			// (learnPlatform): the gate keeps them only if the policy
			// collects hardware facts.
			for _, q := range []string{"ProductName", "Model"} {
				if !slices.Contains(r.Queries, q) {
					r.Queries = append(r.Queries, q)
				}
			}
		}
		if len(r.Queries) == 0 {
			return nil, apperr.Invalid("the collection policy allows none of these queries on %s devices", o).With("reason", SkipPolicy)
		}
		return r, nil
	case mdmproto.InstalledApplicationList:
		if o == privacy.UserEnrolled && schemaOS(d.Platform) == osMacOS {
			// Forbidden there (application.installed.list.yaml); the
			// managed apps are all the organisation may see anyway.
			return mdmproto.ManagedApplicationList{Identifiers: r.Identifiers}, nil
		}
		if o.PersonallyOwned() {
			r.ManagedAppsOnly = true
		}
		return r, nil
	case mdmproto.ProfileList:
		// The employee's own profiles (a VPN, a school's Wi-Fi) are theirs.
		r.ManagedOnly = r.ManagedOnly || o.PersonallyOwned()
		return r, nil
	case mdmproto.CertificateList:
		r.ManagedOnly = r.ManagedOnly || o.PersonallyOwned()
		return r, nil
	case mdmproto.DeviceLocation, mdmproto.EnableLostMode, mdmproto.DisableLostMode:
		if o != privacy.Corporate {
			return nil, apperr.Forbidden("lost mode and locating are for corporate devices only").With("reason", SkipOwnership)
		}
		// A location the gate would only drop is not asked for: the device
		// would still send where it is.
		if _, locate := req.(mdmproto.DeviceLocation); locate && settings.Policy.Mode(o, privacy.Location) == privacy.Drop {
			return nil, apperr.Forbidden("the collection policy does not collect the location of %s devices", o).With("reason", SkipPolicy)
		}
	case mdmproto.EraseDevice:
		if !settings.Policy[o].FullWipe {
			return nil, apperr.Forbidden("the collection policy does not allow a full wipe of %s devices; retire it instead", o).With("reason", SkipPolicy)
		}
		if o == privacy.Personal && !fullWipeConsented {
			return nil, apperr.Forbidden("the employee has not allowed a full wipe of this personal device; retire it instead").With("reason", SkipNoConsent)
		}
	case mdmproto.InstallProfile:
		// A profile can carry a root certificate or a proxy: on personally
		// owned devices only profiles reviewed payload by payload.
		if o.PersonallyOwned() && !r.ReviewedForPersonal {
			return nil, apperr.Forbidden("this profile holds payloads not allowed on personally owned devices").With("reason", SkipOwnership)
		}
	case mdmproto.InstallApplication:
		// User Enrollment installs App Store apps only as Apps and Books
		// (VPP) assignments; Apple refuses any other purchase method there.
		if o == privacy.UserEnrolled && r.ManifestURL == "" {
			r.PurchaseMethod = mdmproto.PurchaseVPP
		}
		return r, nil
	case mdmproto.ClearPasscode:
		// Clearing a passcode opens the employee's own data.
		if o.PersonallyOwned() {
			return nil, apperr.Forbidden("%s is not allowed on personally owned devices", req.RequestType()).With("reason", SkipOwnership)
		}
	}
	return req, nil
}

// Enqueue queues req for each device (adapted per device by RequestFor) in
// one transaction and returns the queued commands. Devices must be enrolled
// in this tenant, and each must be able to take the command: the first
// that cannot fails the request.
func (s *Service) Enqueue(ctx context.Context, tenantID string, deviceIDs []string, req mdmproto.Request, reason string, actor iam.Actor) ([]store.Command, error) {
	if len(deviceIDs) == 0 {
		return nil, apperr.Invalid("name at least one device")
	}
	out, _, err := s.enqueue(ctx, tenantID, listedDevices(deviceIDs), req, reason, actor, false)
	return out, err
}

// Why a bulk enqueue left a device out: Skip.Reason, a stable code.
const (
	// SkipQueueFull: the device's queue holds MaxQueued open commands;
	// send again once it has checked in.
	SkipQueueFull = "queue_full"
	// SkipNotEnrolled: the device is still enrolling, or left management.
	SkipNotEnrolled = "not_enrolled"
	// SkipOwnership: the command is not for devices of its ownership (lost
	// mode and locating off corporate devices, a passcode clear or an
	// unreviewed profile on personally owned ones).
	SkipOwnership = "ownership"
	// SkipPolicy: the collection policy does not allow it on the device's
	// ownership (none of the queries, a full wipe).
	SkipPolicy = "collection_policy"
	// SkipNoConsent: the employee has not allowed a full wipe.
	SkipNoConsent = "no_wipe_consent"
	// SkipNoUnlockToken: the device escrowed no unlock token.
	SkipNoUnlockToken = "no_unlock_token"
	// SkipUnsupervised: the command needs a supervised device.
	SkipUnsupervised = "unsupervised"
	// SkipUnsupported: Apple's rules refuse the command on the device's
	// system or enrolment type (lost mode on a Mac, a lock on a
	// user-enrolled Mac, a Mac's install action on an iPhone).
	SkipUnsupported = "unsupported"
	// SkipPINRequired: a Mac that needs the Find My PIN for a lock or an
	// erase, asked without one (findMyPINRequired).
	SkipPINRequired = "pin_required"
	// SkipRefused: any other rule of the device's.
	SkipRefused = "refused"
)

// IneligibleReasons lists the Skip reasons of a device that cannot take a
// command: all but SkipQueueFull. An error of a rule that leaves a device
// out carries its reason as the detail "reason".
func IneligibleReasons() []string {
	return []string{SkipNotEnrolled, SkipOwnership, SkipPolicy, SkipNoConsent, SkipNoUnlockToken, SkipUnsupervised, SkipUnsupported, SkipPINRequired, SkipRefused}
}

// Skip is a device a bulk enqueue queued nothing for, and why.
type Skip struct {
	DeviceID string
	Reason   string // one of the Skip codes
	Message  string // for a person
}

// EnqueueBulk is Enqueue for many devices: devices that cannot take the
// command (not enrolled, its ownership, the collection policy…) and
// devices whose queue is full are skipped (and returned, with why)
// instead of failing the whole request. A device that does not exist in
// the tenant still fails it, and so does a request whose every device is
// ineligible: with the error the first device's refusal would give alone.
// Full queues do not fail it: they are for later, not never.
func (s *Service) EnqueueBulk(ctx context.Context, tenantID string, deviceIDs []string, req mdmproto.Request, reason string, actor iam.Actor) ([]store.Command, []Skip, error) {
	if len(deviceIDs) == 0 {
		return nil, nil, apperr.Invalid("name at least one device")
	}
	return s.enqueue(ctx, tenantID, listedDevices(deviceIDs), req, reason, actor, true)
}

// EnqueueAllEnrolled is EnqueueBulk for every device of the tenant that is
// enrolled when the transaction runs; more than limit devices are refused.
func (s *Service) EnqueueAllEnrolled(ctx context.Context, tenantID string, limit int, req mdmproto.Request, reason string, actor iam.Actor) ([]store.Command, []Skip, error) {
	return s.enqueue(ctx, tenantID, enrolledDevices(limit), req, reason, actor, true)
}

// targets names the devices of an enqueue, read inside its transaction, in
// order and by ID.
type targets func(ctx context.Context, q store.Queries, tenantID string) ([]string, map[string]store.Device, error)

// listedDevices are the devices a request names, each once: a device named
// twice gets one command, as the admin meant.
func listedDevices(ids []string) targets {
	seen := make(map[string]bool, len(ids))
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
	return func(ctx context.Context, q store.Queries, tenantID string) ([]string, map[string]store.Device, error) {
		if len(ids) == 1 {
			// Locked, as a departure locks it: a departure then either comes
			// first (the device is refused, not enrolled) or after this
			// command is in, and cancels it. Bulk queries skip the lock: an
			// inventory query left queued for a departed device holds nothing
			// and waits on nothing, and the purge takes it with the device.
			d, err := q.Devices().Lock(ctx, tenantID, ids[0])
			if errors.Is(err, store.ErrNotFound) {
				return ids, nil, nil
			}
			return ids, map[string]store.Device{d.ID: d}, err
		}
		devices, err := q.Devices().GetMany(ctx, tenantID, ids)
		return ids, devices, err
	}
}

func enrolledDevices(limit int) targets {
	return func(ctx context.Context, q store.Queries, tenantID string) ([]string, map[string]store.Device, error) {
		var ids []string
		devices := map[string]store.Device{}
		for page := (store.Page{Limit: 1000}); ; {
			ds, err := q.Devices().List(ctx, tenantID, store.DeviceFilter{Page: page})
			if err != nil {
				return nil, nil, err
			}
			for _, d := range ds {
				if d.State == store.DeviceEnrolled {
					ids, devices[d.ID] = append(ids, d.ID), d
				}
			}
			if len(ids) > limit {
				return nil, nil, apperr.Invalid("the tenant has more than %d enrolled devices; name them in several requests", limit)
			}
			if len(ds) < page.Limit {
				return ids, devices, nil
			}
			page.After = ds[len(ds)-1].ID
		}
	}
}

// enqueue queues req for the target devices. bulk skips the devices whose
// queue is full and those that cannot take the command (ineligible); without
// it the first such device fails the request.
func (s *Service) enqueue(ctx context.Context, tenantID string, target targets, req mdmproto.Request, reason string, actor iam.Actor, bulk bool) ([]store.Command, []Skip, error) {
	var out []store.Command
	var skipped []Skip
	err := s.st.Tx(ctx, func(q store.Queries) error {
		out, skipped = out[:0], skipped[:0]
		deviceIDs, devices, err := target(ctx, q, tenantID)
		if err != nil || len(deviceIDs) == 0 {
			return err
		}
		settings, err := privacy.ViewSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		var open map[string]int
		if bulk {
			// Locked before counting: a count taken beside another enqueue
			// would let the store's bound refuse the whole request. The
			// lock and the count serve the enqueue below too.
			if err := q.Commands().LockQueues(ctx, tenantID, deviceIDs); err != nil {
				return err
			}
			if open, err = q.Commands().OpenCounts(ctx, tenantID, deviceIDs); err != nil {
				return err
			}
		}
		install, err := newInstallCheck(ctx, q, tenantID, req)
		if err != nil {
			return err
		}
		full, refused := 0, 0
		var firstRefusal error
		for _, id := range deviceIDs {
			d, ok := devices[id]
			if !ok {
				return apperr.NotFound("device")
			}
			if bulk && open[id] >= s.cfg.MaxQueued {
				skipped = append(skipped, Skip{DeviceID: id, Reason: SkipQueueFull,
					Message: fmt.Sprintf("the device's command queue is full (%d open commands); send again once it has checked in", s.cfg.MaxQueued)})
				full++
				continue
			}
			c, err := s.prepareAsked(ctx, q, d, req, settings, actor)
			c.Reason = reason
			if err == nil {
				err = install.refuses(d)
			}
			if err != nil {
				skip, ineligible := ineligibleFor(id, err)
				if !bulk || !ineligible {
					return err
				}
				if firstRefusal == nil {
					firstRefusal = err
				}
				skipped = append(skipped, skip)
				refused++
				continue
			}
			out = append(out, c)
		}
		if refused == len(deviceIDs) {
			// No device can take it: the request fails as a request for
			// the first of them alone would.
			return firstRefusal
		}
		if err := s.saveCounted(ctx, q, out, open); err != nil {
			return err
		}
		// Against the one device queued, else the tenant: the first device
		// named may be one skipped, and an entry per device would cost a
		// fleet-wide inventory query as much again.
		targetType, targetID := "tenant", tenantID
		if len(out) == 1 {
			targetType, targetID = "device", out[0].DeviceID
		}
		e := actor.Entry(tenantID, "mdm.command.enqueue", targetType, targetID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"request_type": string(req.RequestType()), "devices": len(out), "skipped_full_queue": full,
			"skipped_ineligible": refused}
		if target := commandTarget(req); target != nil {
			e.Details["target"] = target
		}
		return audit.Append(ctx, q, e)
	})
	return out, skipped, err
}

// ineligibleFor says whether err, from preparing a command for device id,
// is the device's refusal of the command (a rule's error: invalid,
// forbidden, conflict, naming its reason), and describes it as a skip. An
// error without a reason is the request's own (a command that does not
// build): it fails the request whichever device meets it first.
func ineligibleFor(id string, err error) (Skip, bool) {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return Skip{}, false
	}
	switch ae.Kind {
	case apperr.KindInvalid, apperr.KindForbidden, apperr.KindConflict:
	default:
		return Skip{}, false
	}
	reason, _ := ae.Details["reason"].(string)
	if reason == "" {
		return Skip{}, false
	}
	if !slices.Contains(IneligibleReasons(), reason) {
		reason = SkipRefused
	}
	return Skip{DeviceID: id, Reason: reason, Message: ae.Message}, true
}

// EnqueueIn queues reqs for device d inside the caller's transaction, with
// the same per-device rules as Enqueue, and returns the queued commands.
func (s *Service) EnqueueIn(ctx context.Context, q store.Queries, d store.Device, reqs []mdmproto.Request, reason string, actor iam.Actor) ([]store.Command, error) {
	return s.enqueueIn(ctx, q, d, reqs, reason, actor, false)
}

// EnqueueInventoryIn is EnqueueIn for inventory queries: one that Apple's
// rules refuse on d (SkipUnsupported: its system, or an OS version it has
// not reported yet) is left out rather than failing the rest, since the
// rest is how Steward learns more. With none left, that refusal is the
// error.
func (s *Service) EnqueueInventoryIn(ctx context.Context, q store.Queries, d store.Device, reqs []mdmproto.Request, reason string, actor iam.Actor) ([]store.Command, error) {
	return s.enqueueIn(ctx, q, d, reqs, reason, actor, true)
}

func (s *Service) enqueueIn(ctx context.Context, q store.Queries, d store.Device, reqs []mdmproto.Request, reason string, actor iam.Actor,
	skipUnsupported bool) ([]store.Command, error) {
	settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
	if err != nil {
		return nil, err
	}
	var policy privacy.Policy
	if skipUnsupported {
		if policy, err = privacy.EffectivePolicy(ctx, q, settings, d); err != nil {
			return nil, err
		}
	}
	cmds := make([]store.Command, 0, len(reqs))
	var targets []map[string]any // what the queued commands act on, for the audit entry
	var unsupported error
	for _, req := range reqs {
		if skipUnsupported && keepsNothingOf(req, policy, privacy.Ownership(d.Ownership)) {
			unsupported = errKeepsNothing(req, d)
			continue
		}
		c, err := s.prepare(ctx, q, d, req, settings, actor)
		c.Reason = reason
		if skipUnsupported && unsupportedThere(err) {
			unsupported = err
			continue
		}
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
		if target := commandTarget(req); target != nil {
			targets = append(targets, target)
		}
	}
	if len(cmds) == 0 && unsupported != nil {
		return nil, unsupported
	}
	if err := s.saveCommands(ctx, q, cmds); err != nil {
		return nil, err
	}
	e := actor.Entry(d.TenantID, "mdm.command.enqueue", "device", d.ID, audit.OutcomeSuccess)
	e.Reason = reason
	var types []string
	for _, c := range cmds {
		if !slices.Contains(types, c.RequestType) {
			types = append(types, c.RequestType)
		}
	}
	e.Details = map[string]any{"commands": len(cmds), "request_type": cmds[0].RequestType, "request_types": types}
	if len(targets) > 0 {
		e.Details["targets"] = targets
	}
	return cmds, audit.Append(ctx, q, e)
}

// listCategories are the categories of what the inventory lists report.
var listCategories = map[mdmproto.RequestType]privacy.Category{
	mdmproto.RequestSecurityInfo:             privacy.SecurityState,
	mdmproto.RequestCertificateList:          privacy.SecurityState,
	mdmproto.RequestInstalledApplicationList: privacy.InstalledApps,
}

// keepsNothingOf says whether policy drops all that req, an inventory
// request, would report on a device of class o: Steward does not ask for
// what it would only throw away. (DeviceInformation is narrowed query by
// query in ownershipRules.) A SecurityInfo also serves as a sign of life
// (askEarlier), and is sent outside inventory (prepareAsked).
func keepsNothingOf(req mdmproto.Request, policy privacy.Policy, o privacy.Ownership) bool {
	c, ok := listCategories[req.RequestType()]
	return ok && policy.Mode(o, c) == privacy.Drop
}

// prepareAsked is prepare for a command an admin asked for: an app or
// certificate list whose answer the device's policy would drop whole is
// refused, as the device would still send every entry of it. A
// SecurityInfo is sent: it also tells whether the device is there, and it
// describes the device's protection, not a person.
func (s *Service) prepareAsked(ctx context.Context, q store.Queries, d store.Device, req mdmproto.Request, settings privacy.Settings, actor iam.Actor) (store.Command, error) {
	if _, isList := listCategories[req.RequestType()]; isList && req.RequestType() != mdmproto.RequestSecurityInfo && d.State == store.DeviceEnrolled {
		policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return store.Command{}, err
		}
		if keepsNothingOf(req, policy, privacy.Ownership(d.Ownership)) {
			return store.Command{}, apperr.Forbidden("the collection policy keeps nothing of %s on %s devices", req.RequestType(), d.Ownership).
				With("reason", SkipPolicy)
		}
	}
	return s.prepare(ctx, q, d, req, settings, actor)
}

// prepare adapts req to the enrolled device d (admitted: RequestFor, the
// employee's full-wipe consent, Apple's rules) and builds its command, with
// the escrowed unlock token a ClearPasscode carries.
func (s *Service) prepare(ctx context.Context, q store.Queries, d store.Device, req mdmproto.Request, settings privacy.Settings, actor iam.Actor) (store.Command, error) {
	r, err := s.admitted(ctx, q, d, req, settings)
	if err != nil {
		return store.Command{}, err
	}
	if _, ok := r.(mdmproto.ClearPasscode); ok {
		if r, err = s.clearPasscodeFor(ctx, q, d); err != nil {
			return store.Command{}, err
		}
	}
	return s.buildCommand(d, r, actor)
}

// admitted returns req adapted to the enrolled device d, or the rule that
// refuses it there: its ownership, the collection policy, its employee's
// full-wipe consent, Apple's rules for its system, enrolment, supervision
// and OS version (RequestFor, CheckFindMyPIN), Lost Mode for a locate.
func (s *Service) admitted(ctx context.Context, q store.Queries, d store.Device, req mdmproto.Request, settings privacy.Settings) (mdmproto.Request, error) {
	if d.State != store.DeviceEnrolled {
		return nil, apperr.Conflict("device %s is %s, not enrolled", d.ID, d.State).With("reason", SkipNotEnrolled)
	}
	var facts DeviceFacts
	var err error
	if _, isErase := req.(mdmproto.EraseDevice); isErase && d.Ownership == string(privacy.Personal) {
		if facts.FullWipeConsented, err = s.fullWipeConsented(ctx, q, d, settings); err != nil {
			return nil, err
		}
	}
	// The device row carries the OS version once the device reported it;
	// only a device that has not (or a command that depends on what else it
	// reported: needsReport) pays for reading the inventory.
	facts.OSVersion = d.OSVersion
	if facts.OSVersion == "" || needsReport(req, d) {
		reported, err := reportedNow(ctx, q, d)
		if err != nil {
			return nil, err
		}
		facts.Supervised, facts.SharedIPad, facts.OSVersion = reported.Supervised, reported.SharedIPad, reported.OSVersion
	}
	if asked, asks := req.(mdmproto.DeviceInformation); asks {
		// Queries follow the policy the device's owner accepted.
		policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
		if err != nil {
			return nil, err
		}
		settings.Policy = policy
		var missing []string
		if facts.GrantedRights, missing, err = s.grantedRights(ctx, q, d, asked, policy); err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			s.log.Debug("mdm: DeviceInformation leaves out queries the device's enrolment grants no access right for; "+
				"it must enrol again to grant them", "tenant", d.TenantID, "device", d.ID, "queries", missing)
		}
	}
	r, err := RequestFor(req, d, settings, facts)
	if err != nil {
		return nil, err
	}
	if err := CheckFindMyPIN(ctx, q, d, r); err != nil {
		return nil, err
	}
	if _, ok := r.(mdmproto.DeviceLocation); ok {
		if err := checkInLostMode(ctx, q, d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// buildCommand encodes r for d with a fresh CommandUUID and seals it.
func (s *Service) buildCommand(d store.Device, r mdmproto.Request, actor iam.Actor) (store.Command, error) {
	c := store.Command{ID: strings.ToUpper(store.NewID()), TenantID: d.TenantID, DeviceID: d.ID, RequestType: string(r.RequestType()),
		State: store.CommandQueued, RequestedBy: actor.Ref(), CreatedAt: s.clock()}
	built, err := mdmproto.Build(c.ID, r)
	if err != nil {
		return c, apperr.Invalid("%v", err)
	}
	if di, ok := r.(mdmproto.DeviceInformation); ok {
		// In clear beside the sealed payload: the result is held to them.
		c.Queries = slices.Clone(di.Queries)
	}
	c.Payload, err = s.sealer.Seal(built.Plist(), commandAD(c.ID))
	return c, err
}

// saveCommands queues cmds and puts their devices on the push queue, in the
// caller's transaction: a queued command always gets its push.
func (s *Service) saveCommands(ctx context.Context, q store.Queries, cmds []store.Command) error {
	return s.saveCounted(ctx, q, cmds, nil)
}

// saveCounted is saveCommands for a caller that holds the queues' lock
// and counted their open commands (open); nil open locks and counts here.
func (s *Service) saveCounted(ctx context.Context, q store.Queries, cmds []store.Command, open map[string]int) error {
	if len(cmds) == 0 {
		return nil
	}
	enqueue := func() error { return q.Commands().Enqueue(ctx, cmds, s.cfg.MaxQueued) }
	if open != nil {
		enqueue = func() error { return q.Commands().EnqueueCounted(ctx, cmds, s.cfg.MaxQueued, open) }
	}
	if err := enqueue(); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return apperr.Conflict("a device's command queue is full (%d open commands); wait for it to check in", s.cfg.MaxQueued).
				With("reason", SkipQueueFull)
		}
		return err
	}
	devices := make([]string, 0, len(cmds))
	var users []string
	for _, c := range cmds {
		if c.UserChannel != "" {
			users = append(users, c.UserChannel)
		} else if len(devices) == 0 || devices[len(devices)-1] != c.DeviceID {
			devices = append(devices, c.DeviceID)
		}
	}
	if _, err := q.AppleChannels().SchedulePush(ctx, cmds[0].TenantID, devices, s.clock()); err != nil || len(users) == 0 {
		return err
	}
	_, err := q.AppleUserChannels().SchedulePush(ctx, cmds[0].TenantID, users, s.clock())
	return err
}

// clearPasscodeFor fills in the UnlockToken the device escrowed at TokenUpdate.
func (s *Service) clearPasscodeFor(ctx context.Context, q store.Queries, d store.Device) (mdmproto.Request, error) {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if err != nil {
		return nil, err
	}
	if ch.UnlockToken == nil {
		return nil, apperr.Conflict("this device escrowed no unlock token, so its passcode cannot be cleared remotely").With("reason", SkipNoUnlockToken)
	}
	token, err := s.openEscrowed(ctx, q, ch.TenantID, ch.DeviceID, unlockToken, ch.UnlockToken)
	if escrowGone(err) {
		return nil, apperr.Conflict("this device's unlock token was erased with its data, so its passcode cannot be cleared remotely").With("reason", SkipNoUnlockToken)
	}
	if err != nil {
		return nil, err
	}
	return mdmproto.ClearPasscode{UnlockToken: mdmproto.SecretBytes(token)}, nil
}

// fullWipeConsented says whether the employee allows a full wipe of d, by
// the rule its enrolment profile's erase right follows (wipeConsented).
// The enrolment is read shared: a take-back of the permission under way
// (TakeBackFullWipe, on the enrolment row; the consent it comes with is a
// new row, which holding the person's consents would not wait for) is
// waited for and seen, and one that comes later waits until the wipe is
// queued or sent. Only full wipes of personal devices ask.
func (s *Service) fullWipeConsented(ctx context.Context, q store.Queries, d store.Device, settings privacy.Settings) (bool, error) {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	e, err := q.Enrolments().GetShared(ctx, d.TenantID, ch.EnrolmentID)
	if err != nil {
		return false, err
	}
	ok, err := consentInForce(ctx, q, e, settings)
	return wipeConsented(e, ok), err
}

// RecentCommands returns device d's commands on its device channel that
// are open, or finished after since (with since zero, every finished one
// too), oldest first. It reads the device's command history (kept for
// privacy.CommandResultRetention), so callers ask only when they need it.
func (s *Service) RecentCommands(ctx context.Context, q store.Queries, d store.Device, since time.Time) ([]store.Command, error) {
	var out []store.Command
	err := eachCommand(ctx, q, d.TenantID, d.ID, func(c store.Command) error {
		if c.UserChannel == "" && (store.CommandOpen(c.State) || c.CompletedAt.After(since) || since.IsZero()) {
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// eachCommand calls fn with every command of device deviceID still held
// (until retention purges it), on any of its channels, oldest first, a
// page at a time.
func eachCommand(ctx context.Context, q store.Queries, tenantID, deviceID string, fn func(store.Command) error) error {
	page := store.Page{Limit: 500}
	for {
		cmds, err := q.Commands().List(ctx, tenantID, deviceID, page)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(cmds) < page.Limit {
			return nil
		}
		page.After = cmds[len(cmds)-1].ID
	}
}

// InstalledAppOf reads what cmd, an open InstallApplication, installs
// from its sealed payload (its App Store ID, bundle ID or manifest URL).
// A finished command's payload is dropped: it gives an error.
func (s *Service) InstalledAppOf(cmd store.Command) (mdmproto.InstallApplication, error) {
	if cmd.RequestType != string(mdmproto.RequestInstallApplication) || len(cmd.Payload) == 0 {
		return mdmproto.InstallApplication{}, fmt.Errorf("command %s is no open InstallApplication", cmd.ID)
	}
	built, err := s.sealer.Open(cmd.Payload, commandAD(cmd.ID))
	if err != nil {
		return mdmproto.InstallApplication{}, err
	}
	return mdmproto.InstalledAppOf(built)
}
