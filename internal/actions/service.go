package actions

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// ApprovalKind marks approvals that hold a remote action.
const ApprovalKind = "device_action"

// maxDevices bounds one request; larger fleets are acted on group by group.
const maxDevices = 50000

// Service carries out remote actions.
type Service struct {
	st     store.Store
	mdm    *mdm.Service
	priv   *privacy.Service
	sealer secrets.Sealer
	log    *slog.Logger
	now    func() time.Time
}

// New wires the service.
func New(st store.Store, m *mdm.Service, priv *privacy.Service, sealer secrets.Sealer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, mdm: m, priv: priv, sealer: sealer, log: log, now: time.Now}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Request is one remote action on some devices: named ones, or a group's
// members at the time of the request.
type Request struct {
	Action    Kind     `json:"action"`
	Reason    string   `json:"reason"`
	DeviceIDs []string `json:"device_ids,omitempty"`
	GroupID   string   `json:"group_id,omitempty"`
	Options   Options  `json:"options"`
}

// Batch is the outcome of a request: its actions, counted by state.
type Batch struct {
	ID         string         `json:"id"`
	Action     Kind           `json:"action"`
	Devices    int            `json:"devices"`
	ApprovalID string         `json:"approval_id,omitempty"`
	ExpiresAt  time.Time      `json:"approval_expires_at,omitzero"`
	States     map[string]int `json:"states"`
}

// approvalPayload is what a waiting approval holds; Options travel sealed
// because they may carry a PIN. Sealed goes once the approval is settled
// (forgetOptions). A rule's request also names the rule (ruleOrigin).
type approvalPayload struct {
	BatchID string `json:"batch_id"`
	Action  Kind   `json:"action"`
	Devices int    `json:"devices"`
	Sealed  []byte `json:"sealed_options,omitempty"`
	ruleOrigin
}

func optionsAD(approvalID string) []byte { return []byte("device-action-options:" + approvalID) }

// Submit validates a request, resolves its devices within scope and either
// carries it out or, under the two-person rule, parks it for a second
// admin. A single named device refused by a rule (ownership, state) fails
// the request with that rule's error; in a bulk request such devices are
// marked refused and the rest go ahead. The rules are checked before a
// request is parked too: only the devices none refuses wait for approval.
func (s *Service) Submit(ctx context.Context, tenantID string, in Request, scope device.Scope, requesterID string, actor iam.Actor) (Batch, error) {
	b, err := s.submit(ctx, tenantID, in, scope, requesterID, actor)
	if err != nil {
		s.Refused(ctx, tenantID, in, err, actor)
	}
	return b, err
}

// Refused audits a request that was turned down (bad input, a rule, a
// device outside the caller's scope): nothing else changed.
func (s *Service) Refused(ctx context.Context, tenantID string, in Request, why error, actor iam.Actor) {
	var ae *apperr.Error
	if !errors.As(why, &ae) || ae.Kind == apperr.KindInternal {
		return
	}
	err := s.st.Tx(ctx, func(q store.Queries) error {
		e := actor.Entry(tenantID, "device.action.request", "device", first(in.DeviceIDs), audit.OutcomeDenied)
		e.Reason = ae.Message
		e.Details = map[string]any{"action": in.Action, "devices": len(in.DeviceIDs), "group": in.GroupID}
		return audit.Append(ctx, q, e)
	})
	if err != nil {
		s.log.Warn("auditing a refused action failed", "error", err.Error())
	}
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

func (s *Service) submit(ctx context.Context, tenantID string, in Request, scope device.Scope, requesterID string, actor iam.Actor) (Batch, error) {
	info, ok := kinds[in.Action]
	if !ok {
		return Batch{}, apperr.Invalid("unknown action %q; one of %v", in.Action, Kinds())
	}
	reason, err := privacy.ValidateReason(in.Reason)
	if err != nil {
		return Batch{}, err
	}
	if err := in.Options.Validate(in.Action); err != nil {
		return Batch{}, err
	}
	if (len(in.DeviceIDs) == 0) == (in.GroupID == "") {
		return Batch{}, apperr.Invalid("name either device_ids or a group_id")
	}
	batch := Batch{ID: store.NewID(), Action: in.Action}
	err = s.st.Tx(ctx, func(q store.Queries) error {
		ids, err := s.resolve(ctx, q, tenantID, in, scope)
		if err != nil {
			return err
		}
		settings, err := device.LoadSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		leaving := map[string]bool{}
		if in.Action != Delete { // a leaving device that never leaves may be forgotten
			if leaving, err = leavingAmong(ctx, q, tenantID, ids); err != nil {
				return err
			}
		}
		if len(leaving) > 0 && len(in.DeviceIDs) == 1 {
			return errLeaving()
		}
		// Checked before any approval too, so that no second admin approves
		// what would be refused; carrying it out checks again.
		staying := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return leaving[id] })
		refused, err := s.refusals(ctx, q, tenantID, in.Action, in.Options, staying)
		if err != nil {
			return err
		}
		if len(refused) > 0 && len(in.DeviceIDs) == 1 {
			return refused[ids[0]]
		}
		batch.Devices = len(ids)
		now := s.clock()
		var actions, notActed []store.DeviceAction
		for _, id := range ids {
			a := store.DeviceAction{ID: store.NewID(), TenantID: tenantID, BatchID: batch.ID, DeviceID: id, Action: string(in.Action),
				Reason: reason, RequestedBy: requesterID, CreatedAt: now, UpdatedAt: now}
			if leaving[id] {
				a.State, a.Error, a.RefusalCode = store.ActionRefused, errLeaving().Message, RefusedLeaving
				notActed = append(notActed, a)
				continue
			}
			if e := refused[id]; e != nil {
				a.State, a.Error, a.RefusalCode = store.ActionRefused, e.Message, refusalCode(e)
				notActed = append(notActed, a)
				continue
			}
			actions = append(actions, a)
		}
		if err := q.Actions().Create(ctx, notActed); err != nil {
			return err
		}
		// Only the devices it acts on count towards a second admin's approval.
		if len(actions) > 0 && (info.twoPerson || len(actions) > settings.BulkApprovalThreshold) {
			return s.park(ctx, q, tenantID, &batch, actions, in, reason, requesterID, settings, actor, ruleOrigin{})
		}
		e := actor.Entry(tenantID, "device.action.request", "batch", batch.ID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"action": in.Action, "devices": len(ids)}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
		return s.execute(ctx, q, tenantID, actions, in.Action, in.Options, len(in.DeviceIDs) == 1, actor)
	})
	if err != nil {
		return Batch{}, err
	}
	return s.withCounts(ctx, tenantID, batch)
}

// resolve lists the request's devices, every one inside the scope; a device
// outside it reads as not found, like one of another tenant.
func (s *Service) resolve(ctx context.Context, q store.Queries, tenantID string, in Request, scope device.Scope) ([]string, error) {
	if in.GroupID != "" {
		if _, err := q.Groups().Get(ctx, tenantID, in.GroupID); err != nil || !scope.AllowsGroup(in.GroupID) {
			if err == nil || errors.Is(err, store.ErrNotFound) {
				return nil, apperr.NotFound("group")
			}
			return nil, err
		}
		ids, err := q.Groups().AllMembers(ctx, tenantID, in.GroupID)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, apperr.Invalid("the group has no devices")
		}
		if len(ids) > maxDevices {
			return nil, apperr.Invalid("one request acts on at most %d devices", maxDevices)
		}
		return ids, nil
	}
	if len(in.DeviceIDs) > maxDevices {
		return nil, apperr.Invalid("one request acts on at most %d devices", maxDevices)
	}
	ids := slices.Clone(in.DeviceIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if _, err := q.Devices().Get(ctx, tenantID, id); errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("device")
		} else if err != nil {
			return nil, err
		}
		if ok, err := scope.Contains(ctx, q, tenantID, id); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.NotFound("device")
		}
	}
	return ids, nil
}

// errLeaving refuses an action on a leaving device: the employee's
// withdrawal decided what happens to it, and only its removal goes to it.
// Refused before any approval, so that no request waits on one either.
func errLeaving() *apperr.Error {
	return apperr.Conflict("the device is leaving management: its employee withdrew consent and the removal of its "+
		"management profile is queued; no other action can be requested for it, except delete").With("reason", RefusedLeaving)
}

// leavingAmong returns which of ids are leaving devices. Few devices are
// leaving at once, so they are listed rather than ids read one by one.
func leavingAmong(ctx context.Context, q store.Queries, tenantID string, ids []string) (map[string]bool, error) {
	wanted := make(map[string]bool, len(ids))
	for _, id := range ids {
		wanted[id] = true
	}
	out := map[string]bool{}
	query := store.DeviceQuery{State: store.DeviceLeaving, Limit: 500}
	for {
		page, err := q.ManagedDevices().Search(ctx, tenantID, query)
		if err != nil {
			return nil, err
		}
		for _, d := range page.Devices {
			if wanted[d.ID] {
				out[d.ID] = true
			}
		}
		if page.Next.ID == "" {
			return out, nil
		}
		query.After = page.Next
	}
}

// park stores the actions as awaiting a second admin. origin names the rule
// that asked for them (Automatic), zero for an admin's request.
func (s *Service) park(ctx context.Context, q store.Queries, tenantID string, batch *Batch, actions []store.DeviceAction, in Request, reason, requesterID string, settings device.Settings, actor iam.Actor, origin ruleOrigin) error {
	now := s.clock()
	a := store.Approval{ID: store.NewID(), TenantID: tenantID, Kind: ApprovalKind, Reason: reason, RequestedBy: requesterID,
		State: "pending", CreatedAt: now, ExpiresAt: now.Add(time.Duration(settings.ApprovalHours) * time.Hour)}
	opts, err := json.Marshal(in.Options)
	if err != nil {
		return err
	}
	sealed, err := s.sealer.Seal(opts, optionsAD(a.ID))
	if err != nil {
		return err
	}
	if a.Payload, err = json.Marshal(approvalPayload{BatchID: batch.ID, Action: in.Action, Devices: len(actions), Sealed: sealed,
		ruleOrigin: origin}); err != nil {
		return err
	}
	if err := q.Approvals().Create(ctx, a); err != nil {
		return err
	}
	for i := range actions {
		actions[i].ApprovalID, actions[i].State = a.ID, store.ActionAwaitingApproval
	}
	if err := q.Actions().Create(ctx, actions); err != nil {
		return err
	}
	batch.ApprovalID, batch.ExpiresAt = a.ID, a.ExpiresAt
	e := actor.Entry(tenantID, "device.action.request", "batch", batch.ID, audit.OutcomeSuccess)
	e.Reason = reason
	e.Details = map[string]any{"action": in.Action, "devices": len(actions), "approval": a.ID, "awaiting_approval": true}
	if origin.PolicyID != "" {
		e.Details["policy"] = origin.PolicyID
	}
	if origin.WaitsBecause != "" {
		e.Details["waits_because"] = origin.WaitsBecause
	}
	return audit.Append(ctx, q, e)
}

// execute carries out actions (all of one batch) inside q. strict fails the
// whole transaction on the first refused device (a single-device request).
func (s *Service) execute(ctx context.Context, q store.Queries, tenantID string, actions []store.DeviceAction, k Kind, o Options, strict bool, actor iam.Actor) error {
	var toCreate, toUpdate []store.DeviceAction
	for _, a := range actions {
		fresh := a.State == ""
		a.UpdatedAt = s.clock()
		err := s.carryOut(ctx, q, tenantID, &a, k, o, actor)
		if err != nil {
			var ae *apperr.Error
			if strict || !errors.As(err, &ae) || ae.Kind == apperr.KindInternal {
				return err
			}
			a.State, a.Error, a.RefusalCode = store.ActionRefused, ae.Message, refusalCode(ae)
		}
		if fresh {
			toCreate = append(toCreate, a)
		} else {
			toUpdate = append(toUpdate, a)
		}
	}
	if len(toCreate) > 0 {
		if err := q.Actions().Create(ctx, toCreate); err != nil {
			return err
		}
	}
	for _, a := range toUpdate {
		if err := q.Actions().Update(ctx, a); err != nil {
			return err
		}
		if a.SealedPIN == nil {
			continue
		}
		if err := q.Actions().KeepPIN(ctx, tenantID, a.ID, a.SealedPIN); err != nil {
			return err
		}
	}
	return nil
}

// carryOut queues one device's commands (or, for delete, forgets it) and
// sets the action's state.
func (s *Service) carryOut(ctx context.Context, q store.Queries, tenantID string, a *store.DeviceAction, k Kind, o Options, actor iam.Actor) error {
	// Locked, as a departure locks it: a device leaving meanwhile either
	// is refused here or cancels the commands queued here, settling the
	// action.
	d, err := q.Devices().Lock(ctx, tenantID, a.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("device")
	}
	if err != nil {
		return err
	}
	if k == Delete {
		if d.Left() { // a leaving device that never comes back may be forgotten
			return apperr.Conflict("the device already left management (%s)", d.State).With("reason", mdm.SkipNotEnrolled)
		}
		if _, err := s.priv.DeprovisionIn(ctx, q, tenantID, d.ID, a.Reason, actor); err != nil {
			return err
		}
		a.State = store.ActionDone
		return nil
	}
	// Its employee withdrew consent while the request awaited approval:
	// refused as it would have been when requested.
	if err := checkEnrolled(d); err != nil {
		return err
	}
	reqs, err := s.commandsFor(ctx, q, d, k, o)
	if err != nil {
		return err
	}
	enqueue := s.mdm.EnqueueIn
	if k == Sync {
		enqueue = s.mdm.EnqueueInventoryIn // what the device takes of it refreshes what Steward knows
	}
	cmds, err := enqueue(ctx, q, d, reqs, a.Reason, actor)
	if err != nil {
		return err
	}
	// The last command finishing finishes the action.
	a.State, a.CommandID = store.ActionQueued, cmds[len(cmds)-1].ID
	if o.PIN == "" || (k != Lock && k != Wipe) {
		return nil
	}
	if takes, err := mdm.TakesFindMyPIN(ctx, q, d); err != nil || !takes {
		return err // an iPhone, an iPad or a Mac before 10.8 is sent no PIN
	}
	return s.sealPIN(a, o.PIN)
}

func (s *Service) withCounts(ctx context.Context, tenantID string, b Batch) (Batch, error) {
	counts, err := s.st.Read().Actions().BatchCounts(ctx, tenantID, b.ID)
	if err != nil {
		return Batch{}, err
	}
	b.States = counts
	return b, nil
}

// Status returns a batch with its counts; ErrNotFound (as an apperr) when
// the batch has no action in the tenant.
func (s *Service) Status(ctx context.Context, tenantID, batchID string) (Batch, []store.DeviceAction, error) {
	q := s.st.Read()
	first, err := q.Actions().Batch(ctx, tenantID, batchID, store.Page{Limit: 1})
	if err != nil {
		return Batch{}, nil, err
	}
	if len(first) == 0 {
		return Batch{}, nil, apperr.NotFound("action batch")
	}
	b := Batch{ID: batchID, Action: Kind(first[0].Action), ApprovalID: first[0].ApprovalID}
	if b, err = s.withCounts(ctx, tenantID, b); err != nil {
		return Batch{}, nil, err
	}
	if b.Devices, err = q.Actions().BatchDevices(ctx, tenantID, batchID); err != nil {
		return Batch{}, nil, err
	}
	return b, first, nil
}

// TellToLeave is the privacy core's hook for a personal device whose
// consent was withdrawn, its personal data erased in the same transaction:
// an enrolled Apple device is sent a retire (the removal of its management
// profile) and reports true; it is then leaving, and the retire's answer
// or the device's CheckOut retires it. The employee's withdrawal is the
// request, so no admin approves it. Any other device reports false.
func (s *Service) TellToLeave(ctx context.Context, q store.Queries, d store.Device, reason string, actor iam.Actor) (bool, error) {
	profileID, err := s.mdm.PrepareToLeave(ctx, q, d)
	if apperr.IsKind(err, apperr.KindConflict) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := s.clock()
	a := store.DeviceAction{ID: store.NewID(), TenantID: d.TenantID, BatchID: store.NewID(), DeviceID: d.ID, Action: string(Retire),
		Reason: reason, RequestedBy: actor.Ref(), CreatedAt: now, UpdatedAt: now}
	cmds, err := s.mdm.EnqueueIn(ctx, q, d, requests(Retire, Options{}, profileID, d.Platform), reason, actor)
	if err != nil {
		return false, err
	}
	a.State, a.CommandID = store.ActionQueued, cmds[len(cmds)-1].ID
	return true, q.Actions().Create(ctx, []store.DeviceAction{a})
}
