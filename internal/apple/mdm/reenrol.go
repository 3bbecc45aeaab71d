package mdm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
//   - an earlier record of the same person, personally owned like the new
//     one, is asked a question (SecurityInfo) and pushed. It is replaced
//     (deprovisioned, as on a CheckOut) once replaceAfter has passed with
//     evidence that it is gone and none that it is there: APNs dropped its
//     token, or took a push for it, and still it never checked in. A device
//     that checks in or fetches the question stays. While pushes fail (an
//     expired push certificate, a request refused), nothing is decided;
//   - any other match (a corporate device, another person's) is audited on
//     the earlier record for an admin to judge.

// replaceAfter is how long an earlier record has to show it is still there
// before a new enrolment of its device replaces it: a weekend switched off
// and a day besides.
const (
	replaceAfter      = 72 * time.Hour
	replaceAfterWords = "three days"
)

// replacementPrefix starts the Settings keys of replacements waiting for
// their earlier record to answer.
const replacementPrefix = "mdm-replace:"

// replacement is an earlier record asked whether it is still there.
type replacement struct {
	TenantID string    `json:"tenant_id"`
	Earlier  string    `json:"earlier"`         // the record that may go
	Enrolled string    `json:"enrolled"`        // the new record naming its UDID
	Probe    string    `json:"probe,omitempty"` // the question; none when its queue was full
	Since    time.Time `json:"since"`
}

func (r replacement) key() string { return replacementsOf(r.TenantID) + r.Earlier }

// replacementsOf starts the Settings keys of tenantID's replacements.
func replacementsOf(tenantID string) string { return replacementPrefix + tenantID + ":" }

// lockForTokenUpdate locks the channel's device and, while it is pending
// (its first TokenUpdate completes the enrolment), the other records that
// named the same UDID, which checkEarlierEnrolments then judges. All are
// locked in ID order, as a person's erasure locks their devices, so neither
// waits on the other; a departure or an erasure of an earlier record under
// way has then finished, or waits for this transaction.
func (s *Service) lockForTokenUpdate(ctx context.Context, q store.Queries, ch store.AppleChannel) (store.Device, []store.Device, error) {
	d, err := q.Devices().Get(ctx, ch.TenantID, ch.DeviceID)
	if err != nil {
		return d, nil, err
	}
	ids := []string{d.ID}
	// A User Enrollment's index is of the enrolment's own ID, new each time.
	if d.State == store.DevicePending && d.Ownership != string(privacy.UserEnrolled) {
		open, err := q.AppleChannels().OpenByIndex(ctx, d.TenantID, ch.ChannelIndex)
		if err != nil {
			return d, nil, err
		}
		for _, c := range open {
			if c.DeviceID != d.ID {
				ids = append(ids, c.DeviceID)
			}
		}
		slices.Sort(ids)
	}
	var earlier []store.Device
	for _, id := range ids {
		locked, err := q.Devices().Lock(ctx, d.TenantID, id)
		switch {
		case id == d.ID:
			if err != nil {
				return d, nil, err
			}
			d = locked
		case errors.Is(err, store.ErrNotFound):
			continue // purged meanwhile
		case err != nil:
			return d, nil, err
		default:
			earlier = append(earlier, locked)
		}
	}
	return d, earlier, nil
}

// checkEarlierEnrolments handles the earlier records of device d, whose
// enrolment has just completed, as lockForTokenUpdate found and locked them.
func (s *Service) checkEarlierEnrolments(ctx context.Context, q store.Queries, d store.Device, earlier []store.Device) error {
	actor := iam.Actor{Type: store.ActorDevice, ID: d.ID}
	for _, od := range earlier {
		if od.Gone() || od.State == store.DevicePending {
			continue // pending: an attempt that never finished, which its own sweep closes
		}
		if replaceable(od, d) {
			if err := s.askEarlier(ctx, q, od, d); err != nil {
				return err
			}
			continue
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

// askEarlier asks earlier whether it is still there and remembers to
// replace it by enrolled if it shows it is not. A full queue (a record
// gone long ago fills up with what is queued for it) takes no question;
// the push and the check-ins still tell.
func (s *Service) askEarlier(ctx context.Context, q store.Queries, earlier, enrolled store.Device) error {
	r := replacement{TenantID: earlier.TenantID, Earlier: earlier.ID, Enrolled: enrolled.ID, Since: s.clock()}
	cmds, err := s.EnqueueIn(ctx, q, earlier, []mdmproto.Request{mdmproto.SecurityInfo{}},
		"a new enrolment names this device's UDID: asking whether it is still there", iam.SystemActor)
	switch {
	case err == nil:
		r.Probe = cmds[0].ID
	case apperr.IsKind(err, apperr.KindConflict):
		if _, err := q.AppleChannels().SchedulePush(ctx, earlier.TenantID, []string{earlier.ID}, r.Since); err != nil {
			return err
		}
	default:
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := q.Settings().Put(ctx, r.key(), b); err != nil {
		return err
	}
	e := iam.Actor{Type: store.ActorDevice, ID: enrolled.ID}.Entry(earlier.TenantID, "mdm.device.enrolled_again", "device", earlier.ID, audit.OutcomeSuccess)
	e.Reason = "the same person enrolled a device naming this one's UDID; this record is replaced if it shows no sign of life within " + replaceAfterWords
	e.Details = map[string]any{"new_device": enrolled.ID, "probe": r.Probe}
	return audit.Append(ctx, q, e)
}

// replaceable says whether enrolled may replace earlier once earlier is
// silent: both the same person's, and personally owned alike.
func replaceable(earlier, enrolled store.Device) bool {
	return enrolled.SubjectID != "" && earlier.SubjectID == enrolled.SubjectID &&
		earlier.Ownership == enrolled.Ownership && privacy.Ownership(enrolled.Ownership).PersonallyOwned()
}

// ReplaceSilentRecords settles up to limit replacements whose earlier
// record has had replaceAfter to show it is still there: one shown gone is
// deprovisioned, one that showed life stays (audited), and one about which
// nothing is known yet (its pushes fail) waits for the next run. It
// returns how many records it deprovisioned.
func (s *Service) ReplaceSilentRecords(ctx context.Context, limit int) (int, error) {
	now := s.clock()
	var due []store.Setting
	var failed []error
	for after := ""; len(due) < limit; {
		page, err := s.st.Read().Settings().ListPrefix(ctx, replacementPrefix, after, 500)
		if err != nil {
			return 0, err
		}
		for _, kv := range page {
			var r replacement
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				failed = append(failed, fmt.Errorf("mdm: replacement %s: %w", kv.Key, err))
				continue
			}
			if now.Sub(r.Since) >= replaceAfter && len(due) < limit {
				due = append(due, kv)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Key
	}
	replaced := 0
	for _, kv := range due {
		gone := false
		err := s.st.Tx(ctx, func(q store.Queries) error {
			var err error
			gone, err = s.settleReplacement(ctx, q, kv)
			return err
		})
		if err != nil {
			failed = append(failed, fmt.Errorf("mdm: settling %s: %w", kv.Key, err))
		} else if gone {
			replaced++
		}
	}
	return replaced, errors.Join(failed...)
}

// settleReplacement settles the replacement read as kv, unless another run
// settled or a newer claim replaced it since; it reports whether the
// earlier record was deprovisioned.
func (s *Service) settleReplacement(ctx context.Context, q store.Queries, kv store.Setting) (bool, error) {
	current, err := q.Settings().Get(ctx, kv.Key)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !bytes.Equal(current, kv.Value)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var r replacement
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return false, err
	}
	found, err := s.judgeEarlier(ctx, q, r)
	if err != nil || found == verdictUnknown {
		return false, err
	}
	if err := q.Settings().Delete(ctx, kv.Key); err != nil {
		return false, err
	}
	switch found {
	case verdictLeft:
		return false, nil
	case verdictThere, verdictWithdrawn:
		e := iam.SystemActor.Entry(r.TenantID, "mdm.device.enrolled_again", "device", r.Earlier, audit.OutcomeDenied)
		e.Reason = "the device showed it is still there after a new enrolment named its UDID; its record was kept"
		if found == verdictWithdrawn {
			e.Reason = "the question to the device was cancelled; its record was kept"
		}
		e.Details = map[string]any{"new_device": r.Enrolled}
		return false, audit.Append(ctx, q, e)
	}
	_, err = s.priv.DeprovisionIn(ctx, q, r.TenantID, r.Earlier, fmt.Sprintf("the device enrolled again as device %s and this record showed no sign of life for %s",
		r.Enrolled, replaceAfterWords), iam.SystemActor)
	if apperr.IsKind(err, apperr.KindConflict) {
		return false, nil // deprovisioned meanwhile
	}
	return err == nil, err
}

// verdict is what the evidence says about an earlier record.
type verdict int

const (
	verdictUnknown   verdict = iota // pushes have not reached APNs: wait
	verdictThere                    // it checked in, or fetched the question
	verdictGone                     // APNs dropped its token, or took a push, and it stayed silent
	verdictLeft                     // it left management meanwhile, or the new record did: nothing to do
	verdictWithdrawn                // an admin cancelled the question: the record stays, as without one
)

// judgeEarlier weighs what the earlier record of r showed since r.Since.
// The earlier record is locked first, as a check-in's Touch takes it: one
// under way on another node is waited for and its signs of life (last
// seen, check-in, the question fetched) read, and one that comes later
// waits for the verdict, never deprovisioning a device that just spoke.
func (s *Service) judgeEarlier(ctx context.Context, q store.Queries, r replacement) (verdict, error) {
	earlier, err := q.Devices().Lock(ctx, r.TenantID, r.Earlier)
	if errors.Is(err, store.ErrNotFound) {
		return verdictLeft, nil
	}
	if err != nil {
		return verdictUnknown, err
	}
	ch, err := q.AppleChannels().Get(ctx, r.TenantID, r.Earlier)
	if errors.Is(err, store.ErrNotFound) {
		return verdictLeft, nil
	}
	if err != nil {
		return verdictUnknown, err
	}
	if earlier.Gone() || ch.CheckedOut {
		return verdictLeft, nil
	}
	enrolled, err := q.Devices().Get(ctx, r.TenantID, r.Enrolled)
	if errors.Is(err, store.ErrNotFound) || (err == nil && enrolled.Gone()) {
		return verdictLeft, nil // nothing backs the claim any more
	}
	if err != nil {
		return verdictUnknown, err
	}
	if ch.LastCheckin.After(r.Since) || earlier.LastSeenAt.After(r.Since) {
		return verdictThere, nil
	}
	if r.Probe != "" {
		probe, err := q.Commands().Get(ctx, r.TenantID, r.Probe)
		if errors.Is(err, store.ErrNotFound) || (err == nil && probe.State == store.CommandCancelled) {
			return verdictWithdrawn, nil
		}
		if err != nil {
			return verdictUnknown, err
		}
		if probe.State != store.CommandQueued {
			return verdictThere, nil // only the device's own signed Idle fetches it
		}
	}
	// A push was due at Since; a due time cleared with no failed attempts
	// left means APNs took one since. A token APNs dropped means the same.
	if ch.PushToken == nil || (ch.PushDueAt.IsZero() && ch.PushAttempts == 0) {
		return verdictGone, nil
	}
	if ch.PushDueAt.IsZero() {
		// The push was refused (the pusher counts an attempt) and nothing
		// is due since: push again, so that one reaches APNs once the
		// endpoint or the proxy is mended.
		_, err := q.AppleChannels().SchedulePush(ctx, r.TenantID, []string{r.Earlier}, s.clock())
		return verdictUnknown, err
	}
	return verdictUnknown, nil
}
