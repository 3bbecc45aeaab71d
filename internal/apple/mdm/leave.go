package mdm

import (
	"context"
	"errors"

	"github.com/steward-mdm/steward/internal/store"
)

// leftChain is the error chain of the commands a departing device never
// answered.
const leftChain = `[{"LocalizedDescription":"cancelled: the device left management before answering"}]`

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
	cancelled, err := q.Commands().CancelOpen(ctx, d.TenantID, d.ID, leftChain, s.clock())
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
