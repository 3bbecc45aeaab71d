package mdm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// openDelivery opens the payload of next, just claimed by sendNext (or
// passes claimErr on), inside the claim's transaction: a payload this
// node cannot open, sealed under a master key it was not given, fails the
// exchange with a server error and leaves the command queued for a node
// that can. Sent and never answered, it would be abandoned in the end as
// the device's failure.
func (s *Service) openDelivery(next store.Command, claimErr error) ([]byte, error) {
	if claimErr != nil {
		return nil, claimErr
	}
	payload, err := s.sealer.Open(next.Payload, commandAD(next.ID))
	if err != nil {
		return nil, &unopenedPayload{cmd: next, err: err}
	}
	return payload, nil
}

// exchange runs one exchange of a device's channel in a transaction: the
// device's answer to its last command, then (claim) the claim of its next.
// When only the claim failed, on a payload this node cannot open, the
// answer is recorded again without it: the device did what it answered,
// and undoing its answer with the claim would make Steward send that
// command again, and in the end count it as never answered.
func (s *Service) exchange(ctx context.Context, res mdmproto.Result, run func(q store.Queries, claim bool) error) error {
	err := s.st.Tx(ctx, func(q store.Queries) error { return run(q, true) })
	var u *unopenedPayload
	if res.Status == mdmproto.StatusIdle || !errors.As(err, &u) {
		return err
	}
	if kept := s.st.Tx(ctx, func(q store.Queries) error { return run(q, false) }); kept != nil {
		return errors.Join(err, kept)
	}
	return err
}

// unopenedPayload is a claimed command whose payload did not open.
type unopenedPayload struct {
	cmd store.Command
	err error
}

func (e *unopenedPayload) Error() string {
	return fmt.Sprintf("opening the payload of command %s (is this node's master key the one that sealed it?): %v", e.cmd.ID, e.err)
}

func (e *unopenedPayload) Unwrap() error { return e.err }

// unopenedGiveUp is how long a command whose payload this node cannot open
// keeps the head of its device's queue: time for a node with the key to
// take the device's next request, or for an operator to give this node the
// key. Then it fails as Steward's error, not the device's, and the
// commands behind it move.
const unopenedGiveUp = time.Hour

const unopenedChain = `[{"LocalizedDescription":"not sent: Steward could not open the command it had stored (a master key missing on the server, or damaged data)"}]`

// afterDelivery passes an exchange's error on, first failing a command
// whose payload has not opened on this node for unopenedGiveUp since it
// was last delivered (by another node: each delivery counts an attempt,
// and restarts the wait).
func (s *Service) afterDelivery(ctx context.Context, err error) error {
	var u *unopenedPayload
	if !errors.As(err, &u) {
		return err
	}
	now := s.clock()
	// The claim that failed counted an attempt, which its rollback undid.
	delivered := u.cmd.Attempts - 1
	key := fmt.Sprintf("%s/%d", u.cmd.ID, delivered)
	if now.Sub(s.unopened.since(key, now)) < unopenedGiveUp {
		return err
	}
	gaveUp := false
	failed := s.st.Tx(ctx, func(q store.Queries) error {
		cmd, err := q.Commands().Get(ctx, u.cmd.TenantID, u.cmd.ID)
		if err != nil || !store.CommandOpen(cmd.State) || cmd.Attempts != delivered {
			return err // finished, or delivered meanwhile by a node that could open it
		}
		// The read locks nothing: a node that can open it may deliver it
		// before this write, which then leaves it to that delivery.
		cmd.State, cmd.CompletedAt, cmd.ErrorChain = store.CommandError, now, unopenedChain
		if err := q.Commands().FinishDelivery(ctx, cmd, delivered); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		gaveUp = true
		return s.finished(ctx, q, cmd)
	})
	if failed != nil {
		return errors.Join(err, failed)
	}
	s.unopened.forget(key)
	if !gaveUp {
		return err
	}
	s.log.Error("a command's payload did not open on this node for an hour; it failed, so the device's queue moves on",
		"tenant", u.cmd.TenantID, "command", u.cmd.ID, "request_type", u.cmd.RequestType, "error", u.err.Error())
	return err
}

// unopenedSince remembers, per node, since when each command's payload has
// failed to open, by command and delivery count.
type unopenedSince struct {
	mu    sync.Mutex
	first map[string]time.Time
}

// maxUnopenedTracked bounds the commands remembered; past it the memory
// starts again, which only delays giving up.
const maxUnopenedTracked = 10_000

func (u *unopenedSince) since(id string, now time.Time) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	if first, ok := u.first[id]; ok {
		return first
	}
	if u.first == nil || len(u.first) >= maxUnopenedTracked {
		u.first = map[string]time.Time{}
	}
	u.first[id] = now
	return now
}

func (u *unopenedSince) forget(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.first, id)
}
