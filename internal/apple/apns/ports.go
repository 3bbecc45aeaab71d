package apns

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Pusher is what the push job depends on. *Client implements it.
type Pusher interface {
	// Push returns exactly one Result per notification, in input order.
	Push(ctx context.Context, notes []Notification) []Result
}

var _ Pusher = (*Client)(nil)

// TokenRegistry is where the device store learns what APNs said about tokens,
// so that nobody keeps pushing to a dead one.
type TokenRegistry interface {
	// MarkUnregistered records that APNs declared token dead at at. It must
	// keep the token when the device reported it after at (a fresh
	// TokenUpdate wins), and silently skip a token it does not know.
	MarkUnregistered(ctx context.Context, token []byte, at time.Time) error
	// MarkBadToken records that APNs refused the token as malformed or not for
	// this topic; it silently skips a token it does not know.
	MarkBadToken(ctx context.Context, token []byte) error
}

// RecordTokenOutcomes passes each Unregistered and BadToken result to reg.
// notes and results must be the input and output of one Push. It returns the
// joined errors of the calls that failed, after trying them all.
func RecordTokenOutcomes(ctx context.Context, reg TokenRegistry, notes []Notification, results []Result) error {
	if len(notes) != len(results) {
		return fmt.Errorf("apns: %d notifications but %d results", len(notes), len(results))
	}
	var errs []error
	for i, r := range results {
		var err error
		switch {
		case r.Outcome == Unregistered:
			err = reg.MarkUnregistered(ctx, notes[i].Token, r.UnregisteredAt)
		case r.Outcome == BadToken && len(notes[i].Token) > 0:
			err = reg.MarkBadToken(ctx, notes[i].Token)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("apns: record outcome of notification %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
