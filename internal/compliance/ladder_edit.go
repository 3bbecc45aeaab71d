package compliance

import (
	"context"
	"errors"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

// stepsOnEditedLadder re-counts a failing device's progress, steps taken
// of the old ladder, on the edited one. A ladder escalates in the fixed
// order of stepOrder, so the steps taken are every old action up to the
// most severe one taken; on the new ladder, every step up to that severity
// counts as taken. So no action is carried out twice for one failure, and
// none more severe than what was done is skipped. A milder step the edit
// added (a notify before a lock already carried out) is passed over: the
// failure escalated beyond it already.
func stepsOnEditedLadder(old, next Ladder, steps int) int {
	if steps <= 0 || len(old) == 0 {
		return 0
	}
	reached := slices.Index(stepOrder, old[min(steps, len(old))-1].Action)
	n := 0
	for n < len(next) && slices.Index(stepOrder, next[n].Action) <= reached {
		n++
	}
	return n
}

// actionsOf lists a ladder's actions in order.
func actionsOf(l Ladder) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Action
	}
	return out
}

// carryLadderProgress moves the progress of every device failing the
// policy from its old ladder onto the edited one, inside the edit's
// transaction: a ladder step running after the edit reads the new ladder
// and a standing counted on it. Each device is locked before its standing
// is read again (see EvaluateDevice), in ID order.
func carryLadderProgress(ctx context.Context, q store.Queries, tenantID, policyID string, old, next Ladder) error {
	if slices.Equal(actionsOf(old), actionsOf(next)) {
		return nil // the same steps: the evaluation after the edit moves their times
	}
	standings, err := q.Compliance().ForPolicy(ctx, tenantID, policyID)
	if err != nil {
		return err
	}
	for _, s := range standings {
		if s.Steps == 0 {
			continue // nothing taken, nothing to carry
		}
		d, err := q.Devices().Lock(ctx, tenantID, s.DeviceID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if d.State != store.DeviceEnrolled {
			continue // its ladder stopped when it left (runStep)
		}
		all, err := q.Compliance().Standings(ctx, tenantID, s.DeviceID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(c store.DeviceCompliance) bool { return c.PolicyID == policyID })
		if i < 0 || all[i].Steps == 0 {
			continue
		}
		cur := all[i]
		cur.Steps = stepsOnEditedLadder(old, next, cur.Steps)
		cur.NextStepAt = nextStep(next, cur.Since, cur.Steps)
		if err := q.Compliance().PutStanding(ctx, cur); err != nil {
			return err
		}
	}
	return nil
}
