package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// A device erased or restored without a CheckOut (Apple sends it on a best
// effort, and a device erased from its own settings sends none) enrols again
// with a new identity, and its earlier record stays enrolled but unreachable.
// When an enrolment completes, Steward looks for the tenant's other open
// channels that named the same UDID. In profile enrolment the UDID is the
// device's own word, and whoever holds an invitation link can send it, so
// no claim takes a record out at once:
//   - the earlier record of the same person, personally owned like the new
//     one, is asked a question (SecurityInfo). A device that was erased
//     never answers; after replaceAfter without an answer the hourly job
//     deprovisions the record, as on a CheckOut. A device that answers is
//     still there, and stays;
//   - any other match (a corporate device, another person's) is audited on
//     the earlier record for an admin to judge.

// replaceAfter is how long an earlier record has to answer before a new
// enrolment of its device replaces it.
const replaceAfter = 24 * time.Hour

// replacementPrefix starts the Settings keys of replacements waiting for
// their earlier record to answer.
const replacementPrefix = "mdm-replace:"

// replacement is an earlier record asked whether it is still there.
type replacement struct {
	TenantID string    `json:"tenant_id"`
	Earlier  string    `json:"earlier"`  // the record that may go
	Enrolled string    `json:"enrolled"` // the new record naming its UDID
	Probe    string    `json:"probe"`    // the command it must answer
	Since    time.Time `json:"since"`
}

func (r replacement) key() string { return replacementPrefix + r.TenantID + ":" + r.Earlier }

// checkEarlierEnrolments handles the earlier records of device d, whose
// enrolment on channel ch has just completed.
func (s *Service) checkEarlierEnrolments(ctx context.Context, q store.Queries, d store.Device, ch store.AppleChannel) error {
	if d.Ownership == string(privacy.UserEnrolled) {
		return nil // its index is of the enrolment's own ID, new each time
	}
	earlier, err := q.AppleChannels().OpenByIndex(ctx, d.TenantID, ch.ChannelIndex)
	if err != nil {
		return err
	}
	actor := iam.Actor{Type: store.ActorDevice, ID: d.ID}
	for _, old := range earlier {
		if old.DeviceID == d.ID {
			continue
		}
		od, err := q.Devices().Get(ctx, d.TenantID, old.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if od.Gone() || od.State == store.DevicePending {
			continue // pending: an attempt that never finished, which its own sweep closes
		}
		if replaceable(od, d) {
			asked, err := s.askEarlier(ctx, q, od, d)
			if err != nil || asked {
				return err
			}
		}
		e := actor.Entry(d.TenantID, "mdm.device.enrolled_again", "device", od.ID, audit.OutcomeDenied)
		e.Reason = "a new enrolment names this device's UDID; the earlier record was kept for an administrator to review"
		e.Details = map[string]any{"new_device": d.ID}
		if err := audit.Append(ctx, q, e); err != nil {
			return err
		}
	}
	return nil
}

// askEarlier queues earlier the question that tells whether it is still
// there, and remembers to replace it by enrolled if it never answers. It
// reports false when the question cannot be queued (a full queue).
func (s *Service) askEarlier(ctx context.Context, q store.Queries, earlier, enrolled store.Device) (bool, error) {
	cmds, err := s.EnqueueIn(ctx, q, earlier, []mdmproto.Request{mdmproto.SecurityInfo{}},
		"a new enrolment names this device's UDID: asking whether it is still there", iam.SystemActor)
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r := replacement{TenantID: earlier.TenantID, Earlier: earlier.ID, Enrolled: enrolled.ID, Probe: cmds[0].ID, Since: s.clock()}
	b, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	if err := q.Settings().Put(ctx, r.key(), b); err != nil {
		return false, err
	}
	e := iam.Actor{Type: store.ActorDevice, ID: enrolled.ID}.Entry(earlier.TenantID, "mdm.device.enrolled_again", "device", earlier.ID, audit.OutcomeSuccess)
	e.Reason = fmt.Sprintf("the same person enrolled a device naming this one's UDID; this record is replaced unless the device answers within %s", replaceAfter)
	e.Details = map[string]any{"new_device": enrolled.ID, "probe": r.Probe}
	return true, audit.Append(ctx, q, e)
}

// replaceable says whether enrolled may replace earlier once earlier is
// silent: both the same person's, and personally owned alike.
func replaceable(earlier, enrolled store.Device) bool {
	return enrolled.SubjectID != "" && earlier.SubjectID == enrolled.SubjectID &&
		earlier.Ownership == enrolled.Ownership && privacy.Ownership(enrolled.Ownership).PersonallyOwned()
}

// ReplaceSilentRecords settles up to limit replacements whose earlier
// record has had replaceAfter to answer: one that never did is
// deprovisioned; one that did stays, and that is audited. It returns how
// many records it deprovisioned.
func (s *Service) ReplaceSilentRecords(ctx context.Context, limit int) (int, error) {
	now := s.clock()
	var due []replacement
	for after := ""; len(due) < limit; {
		page, err := s.st.Read().Settings().ListPrefix(ctx, replacementPrefix, after, 500)
		if err != nil {
			return 0, err
		}
		for _, kv := range page {
			var r replacement
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return 0, fmt.Errorf("mdm: replacement %s: %w", kv.Key, err)
			}
			if now.Sub(r.Since) >= replaceAfter && len(due) < limit {
				due = append(due, r)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Key
	}
	replaced := 0
	var failed error
	for _, r := range due {
		err := s.st.Tx(ctx, func(q store.Queries) error {
			gone, err := s.settleReplacement(ctx, q, r)
			if gone {
				replaced++
			}
			return err
		})
		if err != nil && failed == nil {
			failed = fmt.Errorf("mdm: replacing device %s: %w", r.Earlier, err)
		}
	}
	return replaced, failed
}

// settleReplacement settles one replacement; it reports whether the
// earlier record was deprovisioned.
func (s *Service) settleReplacement(ctx context.Context, q store.Queries, r replacement) (bool, error) {
	if err := q.Settings().Delete(ctx, r.key()); err != nil {
		return false, err
	}
	probe, err := q.Commands().Get(ctx, r.TenantID, r.Probe)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // purged with a record that left meanwhile
	}
	if err != nil {
		return false, err
	}
	switch probe.State {
	case store.CommandQueued:
	case store.CommandCancelled:
		return false, nil // the record left meanwhile
	default:
		// Fetched or answered since: the device is still there.
		e := iam.SystemActor.Entry(r.TenantID, "mdm.device.enrolled_again", "device", r.Earlier, audit.OutcomeDenied)
		e.Reason = "the device answered after a new enrolment named its UDID; its record was kept"
		e.Details = map[string]any{"new_device": r.Enrolled}
		return false, audit.Append(ctx, q, e)
	}
	if enrolled, err := q.Devices().Get(ctx, r.TenantID, r.Enrolled); err != nil || enrolled.Gone() {
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return false, err // the new record left too: nothing backs its claim any more
	}
	_, err = s.priv.DeprovisionIn(ctx, q, r.TenantID, r.Earlier, fmt.Sprintf("the device enrolled again as device %s and this record has not answered for %s",
		r.Enrolled, replaceAfter), iam.SystemActor)
	if apperr.IsKind(err, apperr.KindConflict) {
		return false, nil // deprovisioned meanwhile
	}
	return err == nil, err
}
