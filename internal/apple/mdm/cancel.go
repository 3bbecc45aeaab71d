package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// maxCancelReason bounds the reason an admin gives for cancelling; it is
// kept in the command's error chain, which holds 300 bytes of text.
const maxCancelReason = 200

// Cancel withdraws a command an admin no longer wants carried out: one
// still queued, or answered "not now" (the device would be offered it
// again). A command already delivered cannot be recalled, since the device
// may be carrying it out; its answer is awaited. What waits on the command
// is settled as for any cancelled one: an action's fails, a profile's
// installation is marked failed. The identity renewal Steward queued
// itself cannot be cancelled: the device would drop out of management.
func (s *Service) Cancel(ctx context.Context, tenantID, deviceID, commandID, reason string, actor iam.Actor) (store.Command, error) {
	chain, err := cancelledChain("cancelled by an administrator", reason)
	if err != nil {
		return store.Command{}, err
	}
	var out store.Command
	err = s.st.Tx(ctx, func(q store.Queries) error {
		cmd, err := q.Commands().Get(ctx, tenantID, commandID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cmd.DeviceID != deviceID) {
			return apperr.NotFound("command")
		}
		if err != nil {
			return err
		}
		if ch, err := q.AppleChannels().Get(ctx, tenantID, deviceID); err == nil && ch.RenewalCommand == commandID {
			return apperr.Conflict("this command renews the device's identity certificate: without it the device drops out of management when the certificate expires")
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if cmd.State != store.CommandQueued && cmd.State != store.CommandNotNow {
			return apperr.Conflict("the command is %s: only a command not yet delivered, or answered \"not now\", can be cancelled", cmd.State)
		}
		// A check-in may deliver it between the read and this write.
		if out, err = q.Commands().Cancel(ctx, tenantID, commandID, chain, s.clock()); errors.Is(err, store.ErrNotFound) {
			return apperr.Conflict("the command was delivered meanwhile; its answer is awaited")
		} else if err != nil {
			return err
		}
		if err := s.finished(ctx, q, out); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.command.cancel", "device", deviceID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"command": commandID, "request_type": out.RequestType}
		if out.UserChannel != "" {
			e.Details["user_channel"] = out.UserChannel // a user's, left out of others' exports
		}
		return audit.Append(ctx, q, e)
	})
	return out, err
}

// cancelledChain is the error chain of commands an admin cancelled, with
// the reason they gave (bounded: it is audited and kept with the command).
func cancelledChain(description, reason string) (string, error) {
	if utf8.RuneCountInString(reason) > maxCancelReason {
		return "", apperr.Invalid("the reason is longer than %d characters", maxCancelReason).With("field", "reason")
	}
	if reason != "" {
		description += ": " + reason
	}
	chain, err := json.Marshal([]mdmproto.ErrorChainItem{{LocalizedDescription: description}})
	return string(chain), err
}

// CancelUndeliveredIn is Cancel for Steward's own rules, in the caller's
// transaction: command commandID of device d is cancelled if the device
// has not been handed it yet (queued, or answered "not now"), with
// description as its error chain, settled as Cancel settles it, and
// audited. It reports false, changing nothing, for a command delivered or
// finished: the device may be carrying it out.
func (s *Service) CancelUndeliveredIn(ctx context.Context, q store.Queries, d store.Device, commandID, description string, actor iam.Actor) (bool, error) {
	chain, err := cancelledChain(description, "")
	if err != nil {
		return false, err
	}
	cmd, err := q.Commands().Cancel(ctx, d.TenantID, commandID, chain, s.clock())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cmd.DeviceID != d.ID {
		return false, fmt.Errorf("command %s is not device %s's", commandID, d.ID) // rolls the cancellation back
	}
	if err := s.finished(ctx, q, cmd); err != nil {
		return false, err
	}
	e := actor.Entry(d.TenantID, "mdm.command.cancel", "device", d.ID, audit.OutcomeSuccess)
	e.Reason = description
	e.Details = map[string]any{"command": commandID, "request_type": cmd.RequestType}
	return true, audit.Append(ctx, q, e)
}
