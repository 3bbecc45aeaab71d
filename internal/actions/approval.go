package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Decision approves or rejects a parked action.
type Decision struct {
	Approve bool   `json:"approve"`
	Comment string `json:"comment"`
}

// PendingAction returns the action kind a pending approval holds, so the
// caller can check the decider holds its permission first.
func (s *Service) PendingAction(ctx context.Context, tenantID, approvalID string) (Kind, error) {
	a, err := s.st.Read().Approvals().Get(ctx, tenantID, approvalID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Kind != ApprovalKind) {
		return "", apperr.NotFound("approval")
	}
	if err != nil {
		return "", err
	}
	var p approvalPayload
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		return "", fmt.Errorf("actions: approval %s holds an unreadable payload: %w", a.ID, err)
	}
	return p.Action, nil
}

// Decide lets a second admin approve (the actions are carried out at once)
// or reject a parked request. The requester cannot decide their own
// request, nor can a decided or expired one be decided; each refusal is
// audited and changes nothing else.
func (s *Service) Decide(ctx context.Context, tenantID, approvalID string, in Decision, deciderID string, actor iam.Actor) (Batch, error) {
	var refusal error
	var batch Batch
	err := s.st.Tx(ctx, func(q store.Queries) error {
		a, err := q.Approvals().Get(ctx, tenantID, approvalID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && a.Kind != ApprovalKind) {
			return apperr.NotFound("approval")
		}
		if err != nil {
			return err
		}
		var p approvalPayload
		if err := json.Unmarshal(a.Payload, &p); err != nil {
			return fmt.Errorf("actions: approval %s holds an unreadable payload: %w", a.ID, err)
		}
		batch = Batch{ID: p.BatchID, Action: p.Action, Devices: p.Devices, ApprovalID: a.ID, ExpiresAt: a.ExpiresAt}
		now := s.clock()
		deny := func(e error, why string) error {
			refusal = e
			r := actor.Entry(tenantID, "device.action.decide", "approval", a.ID, audit.OutcomeDenied)
			r.Reason = why
			return audit.Append(ctx, q, r)
		}
		if why, refusal := privacy.CheckDecider(a, deciderID, now); refusal != nil {
			if why == "expired" {
				if err := s.expire(ctx, q, a, now); err != nil {
					return err
				}
			}
			if settled(a, now) {
				if err := forgetOptions(ctx, q, a, p, now); err != nil {
					return err
				}
			}
			return deny(refusal, why)
		}
		all, err := q.Actions().ForApproval(ctx, tenantID, a.ID)
		if err != nil {
			return err
		}
		// A request refused as lapsed (below) stays pending, its actions settled.
		waiting := slices.DeleteFunc(slices.Clone(all), func(d store.DeviceAction) bool { return d.State != store.ActionAwaitingApproval })
		if in.Approve {
			// A ladder's request waits up to approval_hours, and the device
			// may have been fixed meanwhile: refused then, as a lapsed
			// request is, its actions settled and the approval left to
			// expire.
			why, err := ladderRequestLapsed(ctx, q, tenantID, p, all)
			if err != nil {
				return err
			}
			if why != "" {
				if err := s.refuseLapsed(ctx, q, waiting, why, now); err != nil {
					return err
				}
				return deny(apperr.Conflict("%s", why), why)
			}
		}
		state, err := privacy.Decide(ctx, q, a, in.Approve, deciderID, now)
		if err != nil {
			return err
		}
		e := actor.Entry(tenantID, "device.action.decide", "approval", a.ID, audit.OutcomeSuccess)
		e.Reason = strings.TrimSpace(in.Comment)
		e.Details = map[string]any{"decision": state, "batch": p.BatchID, "action": p.Action, "devices": p.Devices}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
		if !in.Approve {
			if err := s.setAll(ctx, q, waiting, store.ActionRejected, now); err != nil {
				return err
			}
			return forgetOptions(ctx, q, a, p, now)
		}
		opened, err := s.sealer.Open(p.Sealed, optionsAD(a.ID))
		if err != nil {
			return err
		}
		var opts Options
		if err := json.Unmarshal(opened, &opts); err != nil {
			return fmt.Errorf("actions: approval %s holds unreadable options: %w", a.ID, err)
		}
		// Carried out in the approver's name: they took the decision that
		// let it happen; the audit entry above links the requester.
		if err := s.execute(ctx, q, tenantID, waiting, p.Action, opts, false, actor); err != nil {
			return err
		}
		// The actions and their commands hold what they need now.
		return forgetOptions(ctx, q, a, p, now)
	})
	if err == nil && refusal != nil {
		return Batch{}, refusal
	}
	if err != nil {
		return Batch{}, err
	}
	return s.withCounts(ctx, tenantID, batch)
}

func (s *Service) setAll(ctx context.Context, q store.Queries, as []store.DeviceAction, state string, at time.Time) error {
	for _, a := range as {
		a.State, a.UpdatedAt = state, at
		if err := q.Actions().Update(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// settled reports whether a can no longer be carried out at now, as
// ApprovalStore.Settled and privacy.CheckDecider judge it.
func settled(a store.Approval, now time.Time) bool {
	return a.State != "pending" || !now.Before(a.ExpiresAt)
}

// forgetOptions drops from approval a, settled at now, its sealed options:
// a PIN, a lock screen's message and phone number. A rejected or lapsed
// request's never reach a device; an approved one's went to its actions
// and commands, whose own retention keeps them, so a second copy here
// would outlive theirs. What the record shows (batch, action, devices,
// reason, decision) stays.
func forgetOptions(ctx context.Context, q store.Queries, a store.Approval, p approvalPayload, now time.Time) error {
	if len(p.Sealed) == 0 {
		return nil
	}
	p.Sealed = nil
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return q.Approvals().ForgetSecrets(ctx, a.TenantID, a.ID, payload, now)
}

// settledPage is how many approvals SettleApprovals reads at a time.
const settledPage = 500

// approvalsActor is who expires lapsed requests in the audit log.
var approvalsActor = iam.Actor{Type: store.ActorSystem, ID: "approvals"}

// SettledApprovals counts one SettleApprovals sweep.
type SettledApprovals struct {
	OptionsForgotten int // approvals whose sealed options went
	Lapsed           int // lapsed approvals whose waiting actions were expired
}

// SettleApprovals finishes what deciding would have finished for every
// remote action's approval, in every tenant, that can no longer be carried
// out. A lapsed one no one decided has its waiting actions expired, so the
// devices' histories and the batch stop saying "awaiting approval", with
// an audit entry. Any settled one still holding sealed options (a PIN, a
// lock screen's message and phone number) loses them: one that lapsed,
// which nothing may read again, or one decided before deciding dropped
// them. Deciding, and a decision refused as too late, do both at once;
// this sweep is for the rest.
func (s *Service) SettleApprovals(ctx context.Context) (SettledApprovals, error) {
	now := s.clock()
	var done SettledApprovals
	for after := ""; ; {
		page, err := s.st.Read().Approvals().Settled(ctx, ApprovalKind, now, after, settledPage)
		if err != nil {
			return done, err
		}
		work, err := s.unsettled(ctx, page)
		if err != nil {
			return done, err
		}
		if len(work) > 0 {
			var n SettledApprovals
			err := s.st.Tx(ctx, func(q store.Queries) error {
				n = SettledApprovals{} // a retried transaction starts afresh
				for _, w := range work {
					lapsed, forgot, err := s.settle(ctx, q, w, now)
					if errors.Is(err, store.ErrNotFound) {
						continue // purged meanwhile, with its tenant or by retention
					}
					if err != nil {
						return err
					}
					n.Lapsed += lapsed
					n.OptionsForgotten += forgot
				}
				return nil
			})
			if err != nil {
				return done, err
			}
			done.Lapsed += n.Lapsed
			done.OptionsForgotten += n.OptionsForgotten
		}
		if len(page) < settledPage {
			return done, nil
		}
		after = page[len(page)-1].ID
	}
}

// unsettledApproval is a settled approval with something left to finish.
type unsettledApproval struct {
	approval store.Approval
	payload  approvalPayload
	waiting  bool // it lapsed with actions still awaiting it
}

// unsettled picks from page, read outside any transaction, the approvals
// with something left to finish, so a sweep with nothing to do writes
// nothing.
func (s *Service) unsettled(ctx context.Context, page []store.Approval) ([]unsettledApproval, error) {
	var work []unsettledApproval
	for _, a := range page {
		var p approvalPayload
		if err := json.Unmarshal(a.Payload, &p); err != nil {
			// Left as it is: it could not be decided either; the
			// master-key rotation reports it.
			s.log.Warn("an approval holds an unreadable payload", "tenant", a.TenantID, "approval", a.ID, "error", err.Error())
			continue
		}
		w := unsettledApproval{approval: a, payload: p}
		if a.State == "pending" { // Settled returns a pending one once it lapsed
			acts, err := s.st.Read().Actions().ForApproval(ctx, a.TenantID, a.ID)
			if err != nil {
				return nil, err
			}
			w.waiting = slices.ContainsFunc(acts, func(d store.DeviceAction) bool { return d.State == store.ActionAwaitingApproval })
		}
		if w.waiting || len(p.Sealed) > 0 {
			work = append(work, w)
		}
	}
	return work, nil
}

// settle finishes w in q: it says whether it expired w's waiting actions
// (1 or 0) and forgot its options (1 or 0). The payload's fields other
// than the options never change once parked, and an approval settled at
// now stays settled, so the page's copy is as good as a fresh read.
func (s *Service) settle(ctx context.Context, q store.Queries, w unsettledApproval, now time.Time) (lapsed, forgot int, err error) {
	a, p := w.approval, w.payload
	if w.waiting {
		if err := s.expire(ctx, q, a, now); err != nil {
			return 0, 0, err
		}
		e := approvalsActor.Entry(a.TenantID, "device.action.expire", "approval", a.ID, audit.OutcomeSuccess)
		e.Reason = "no second admin decided before " + a.ExpiresAt.UTC().Format(time.RFC3339)
		e.Details = map[string]any{"batch": p.BatchID, "action": p.Action, "devices": p.Devices}
		if err := audit.Append(ctx, q, e); err != nil {
			return 0, 0, err
		}
		lapsed = 1
	}
	if len(p.Sealed) > 0 {
		if err := forgetOptions(ctx, q, a, p, now); err != nil {
			return 0, 0, err
		}
		forgot = 1
	}
	return lapsed, forgot, nil
}

// expire marks a lapsed approval's waiting actions expired.
func (s *Service) expire(ctx context.Context, q store.Queries, a store.Approval, now time.Time) error {
	acts, err := q.Actions().ForApproval(ctx, a.TenantID, a.ID)
	if err != nil {
		return err
	}
	waiting := slices.DeleteFunc(acts, func(d store.DeviceAction) bool { return d.State != store.ActionAwaitingApproval })
	return s.setAll(ctx, q, waiting, store.ActionExpired, now)
}

// noLocationNote is what a locate whose answer stored no location tells
// the admin: done, since the device did what it was asked, but nowhere
// new, why (why, from mdm.NoLocationStored), and when the location Steward
// held at that moment had been received. The note is kept with the
// action, so it says "then": that location expires, or goes with an
// erasure, on its own. Only the time is read, never the location.
func (s *Service) noLocationNote(ctx context.Context, q store.Queries, cmd store.Command, why string) (string, error) {
	at, ok, err := mdm.LastLocationAt(ctx, q, cmd.TenantID, cmd.DeviceID, s.clock())
	if err != nil {
		return "", err
	}
	note := why + ", so no location was stored"
	if !ok {
		return note + "; Steward then held none from before", nil
	}
	return note + "; the location Steward then held had been received " + privacy.ExportTime(at), nil
}

// CommandFinished follows a device's answer to an action's command: the
// action is done or failed (a locate whose answer stored no location is
// done, its error saying why: noLocationNote), and a retire or wipe the
// device acknowledged takes it out of management (its personal data
// erased, certificate issued); a leaving device's failed retire is sent again later
// (RetellLeaving), whether the device failed it or its command was
// cancelled. A command cancelled because the device left fails its
// action, except a retire answered by the device's CheckOut, which
// finishes exactly as an acknowledged retire does. It is an mdm hook, run
// inside the result's (or the departure's) transaction.
func (s *Service) CommandFinished(ctx context.Context, q store.Queries, cmd store.Command) error {
	a, err := q.Actions().ByCommand(ctx, cmd.TenantID, cmd.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not an action's command
	}
	if err != nil {
		return err
	}
	a.UpdatedAt = s.clock()
	// The device removed its management profile before answering (its
	// CheckOut often answers the retire): what the retire asked for
	// happened. Any other departure leaves the retire undone.
	answeredByCheckOut := mdm.CancelledByCheckOut(cmd) && Kind(a.Action) == Retire
	if cmd.State == store.CommandError || (cmd.State == store.CommandCancelled && !answeredByCheckOut) {
		a.State, a.Error = store.ActionFailed, mdm.ErrorRecord(cmd.ErrorChain)
		// The device refused its removal or never answered it, or an admin
		// cancelled it: a leaving device is sent it again (RetellLeaving),
		// since the employee's withdrawal asked for it, and the admin reads
		// when, or that Steward stopped.
		if Kind(a.Action) == Retire {
			if a.Error, err = s.leavingRemovalFailed(ctx, q, a, a.Error); err != nil {
				return err
			}
		}
		return q.Actions().Update(ctx, a)
	}
	a.State = store.ActionDone
	if why := mdm.NoLocationStored(cmd); Kind(a.Action) == Locate && why != "" {
		if a.Error, err = s.noLocationNote(ctx, q, cmd, why); err != nil {
			return err
		}
	}
	if err := q.Actions().Update(ctx, a); err != nil {
		return err
	}
	var leave string
	switch Kind(a.Action) {
	case Retire:
		leave = store.DeviceRetired
	case Wipe:
		leave = store.DeviceWiped
	default:
		return nil
	}
	_, err = s.priv.LeaveIn(ctx, q, cmd.TenantID, cmd.DeviceID, leave, a.Reason, iam.Actor{Type: store.ActorDevice, ID: cmd.DeviceID})
	if apperr.IsKind(err, apperr.KindConflict) {
		return nil // it left already (CheckOut came first)
	}
	return err
}
