package mdm

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/store"
)

// leftChain is the error chain of the commands a departing device never
// answered; checkedOutChain that of the commands a device left unanswered
// when it removed its management profile itself.
const (
	leftChain       = `[{"LocalizedDescription":"cancelled: the device left management before answering"}]`
	checkedOutChain = `[{"LocalizedDescription":"cancelled: the device removed its management profile before answering"}]`
)

// CancelledByCheckOut reports whether cmd was cancelled because its device
// removed its management profile, which is what a retire asks for.
func CancelledByCheckOut(cmd store.Command) bool {
	return cmd.State == store.CommandCancelled && cmd.ErrorChain == checkedOutChain
}

// DeviceLeft is the privacy core's hook for a device leaving management,
// however it left (CheckOut, deprovisioning, retirement, wipe, the
// employee's erasure or withdrawn consent). The channel is closed for good:
// the device's messages are refused, nothing is pushed to it, and the
// secrets it gave (unlock and bootstrap tokens) go. Its open commands are
// cancelled with their payloads, which can hold a lock PIN, and their
// hooks run so that the actions and profiles waiting on them are settled.
func (s *Service) DeviceLeft(ctx context.Context, q store.Queries, d store.Device) error {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not an Apple device, or it never finished Authenticate
	}
	if err != nil {
		return err
	}
	ch.CheckedOut, ch.PushToken, ch.PushMagic, ch.UnlockToken, ch.Bootstrap = true, nil, "", nil, nil
	ch.UpdatedAt = s.clock()
	if err := q.AppleChannels().Update(ctx, ch); err != nil {
		return err
	}
	return s.cancelOpen(ctx, q, d.TenantID, d.ID, leftChain)
}

// cancelOpen cancels the device's open commands with chain and runs their
// finished hooks.
func (s *Service) cancelOpen(ctx context.Context, q store.Queries, tenantID, deviceID, chain string) error {
	cancelled, err := q.Commands().CancelOpen(ctx, tenantID, deviceID, chain, s.clock())
	if err != nil {
		return err
	}
	for _, cmd := range cancelled {
		if err := s.finished(ctx, q, cmd); err != nil {
			return err
		}
	}
	return nil
}
