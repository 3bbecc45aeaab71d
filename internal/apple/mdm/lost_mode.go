package mdm

import (
	"context"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// errNotInLostMode refuses a DeviceLocation for a device Steward did not
// put in Lost Mode: the device answers only in Lost Mode, with error 12067
// otherwise (device.lostmode.location.yaml).
var errNotInLostMode = apperr.Conflict("this device is not in Lost Mode, as far as Steward knows (no EnableLostMode it acknowledged "+
	"or has queued since the last DisableLostMode, within the commands' 30 days): a device is located only in Lost Mode, "+
	"so enable it first").With("reason", SkipRefused)

// checkInLostMode refuses to locate d unless, of the Lost Mode commands it
// acknowledged or still has queued, the last one enables it: queued ones
// run before the locate. Lost Mode ends only by DisableLostMode or an
// erase, after which the device is no longer managed here.
func checkInLostMode(ctx context.Context, q store.Queries, d store.Device) error {
	lost := false
	err := eachCommand(ctx, q, d.TenantID, d.ID, func(c store.Command) error {
		if c.UserChannel != "" || !(store.CommandOpen(c.State) || c.State == store.CommandAcknowledged) {
			return nil
		}
		switch mdmproto.RequestType(c.RequestType) {
		case mdmproto.RequestEnableLostMode:
			lost = true
		case mdmproto.RequestDisableLostMode:
			lost = false
		}
		return nil
	})
	if err != nil || lost {
		return err
	}
	return errNotInLostMode
}
