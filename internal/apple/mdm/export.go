package mdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// exportDevice is what the MDM protocol holds about device d, for its
// person's data export: its channel, the tokens escrowed for it, the user
// accounts that had a channel on it, and the commands Steward sent it.
// Accounts are kept by keyed index only, so the export can say when each
// was seen, not whose it is: on an organisation's device, whose other users
// are colleagues, it gives only their number, and leaves out the commands
// sent to their accounts.
func (s *Service) exportDevice(ctx context.Context, q store.Queries, d store.Device) ([]privacy.ExportRecord, error) {
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // not an Apple device, or it never sent Authenticate
	}
	if err != nil {
		return nil, err
	}
	recs := []privacy.ExportRecord{
		{Name: "Apple MDM channel", Value: openOrClosed(ch.CheckedOut)},
		{Name: "Enrolment", Value: ch.EnrolmentID},
		{Name: "Last check-in", Value: privacy.ExportTime(ch.LastCheckin)},
		{Name: "Device identity certificate valid until", Value: privacy.ExportTime(ch.CertNotAfter)},
		privacy.ExportFlag("Push registration held", ch.PushToken != nil),
		privacy.ExportFlag("Unlock token held (lets the organisation clear the device's passcode)", ch.UnlockToken != nil),
		privacy.ExportFlag("Bootstrap token held (lets the organisation authorise macOS updates and new accounts)", ch.Bootstrap != nil),
	}
	personal := privacy.Ownership(d.Ownership).PersonallyOwned()
	if recs, err = appendCommands(ctx, q, d, commandsOn{everyChannel: personal}, recs); err != nil {
		return nil, err
	}
	users, err := q.AppleUserChannels().List(ctx, d.TenantID, d.ID)
	if err != nil {
		return nil, err
	}
	if !personal {
		if len(users) > 0 {
			recs = append(recs, privacy.ExportRecord{Name: "User account channels on the device (its users' accounts, yours perhaps among them)",
				Value: strconv.Itoa(len(users))})
		}
		return recs, nil
	}
	for _, uc := range users {
		recs = append(recs, privacy.ExportRecord{Name: "Channel of a user account on the device (" + uc.ID + ")",
			Value: fmt.Sprintf("%s; opened %s, last check-in %s", openOrClosed(uc.CheckedOut), privacy.ExportTime(uc.CreatedAt), privacy.ExportTime(uc.LastCheckin))})
	}
	return recs, nil
}

// othersAccountsLeftOut is the privacy core's ExportAuditFilter. A lookup
// of an account on the device stays out of every device's export: it is
// about the account's person, whose access record has it. On an
// organisation's device, whose other users are colleagues and whose
// channels Steward cannot tell from the person's own (exportDevice gives
// their number only), the other audit entries about its user channels
// (opened, closed, sent a command) stay out of the person's export, as
// those channels' commands do.
func othersAccountsLeftOut(e store.AuditEntry, d store.Device) bool {
	if e.Action == "mdm.user_channel.lookup" {
		// Asked about an account, whoever's it is, and why: that person's
		// access record says so, not the device's export.
		return false
	}
	if privacy.Ownership(d.Ownership).PersonallyOwned() {
		return true
	}
	if strings.HasPrefix(e.Action, "mdm.user_channel.") {
		return false
	}
	return auditedChannel(e) == ""
}

// exportSubject lists the enrolment links made for a person, used or not:
// each says which kind of device it was for, what the person answered on a
// full wipe, and its dates. Audit entries about them go with the export.
func (s *Service) exportSubject(ctx context.Context, q store.Queries, tenantID, subjectID string) (privacy.SubjectExportPart, error) {
	enrolments, err := q.Enrolments().ListForSubject(ctx, tenantID, subjectID)
	if err != nil {
		return privacy.SubjectExportPart{}, err
	}
	var part privacy.SubjectExportPart
	for _, e := range enrolments {
		v := fmt.Sprintf("%s device, %s; notice version %d; full wipe allowed: %s; created %s, link valid until %s, used %s",
			e.Ownership, e.State, e.NoticeVersion, privacy.YesNo(e.AllowFullWipe), privacy.ExportTime(e.CreatedAt),
			privacy.ExportTime(e.ExpiresAt), privacy.ExportTime(e.UsedAt))
		if e.LinkMailed {
			v += "; the link was mailed to you"
		} else {
			v += "; the link was given to an IT admin to pass on"
		}
		if e.UserEnrollment {
			v += "; User Enrollment (the organisation manages only its own apps and data)"
		} else if e.AccessRights != 0 {
			v += "; what its profile lets the organisation do: " + mdmproto.AccessRights(e.AccessRights).Describe()
		}
		if e.DeviceID != "" {
			v += "; device " + e.DeviceID
		}
		part.Records = append(part.Records, privacy.ExportRecord{Name: "Enrolment " + e.ID, Value: v})
		part.AuditTargets = append(part.AuditTargets, e.ID)
	}
	err = s.exportAccountChannels(ctx, q, tenantID, subjectID, &part)
	return part, err
}

// exportAccountChannels lists the open user channels of the tenant that
// derive from the person's account names, on any device: a Shared iPad
// they log in to, a colleague's Mac, their own. Nothing else tells these
// apart from other users' channels. With each come the commands sent to it
// and the audit entries about it, which the device's own export leaves out
// on an organisation's device (its other users are colleagues); a personal
// device of the person's own gives them already.
func (s *Service) exportAccountChannels(ctx context.Context, q store.Queries, tenantID, subjectID string, part *privacy.SubjectExportPart) error {
	sub, err := s.priv.Subject(ctx, q, tenantID, subjectID)
	if err != nil {
		return err
	}
	if s.priv.SubjectStatus(ctx, q, sub) != "active" {
		return nil // erased, or a key lost: no name to find channels by
	}
	p, err := s.priv.OpenProfile(ctx, q, sub)
	if err != nil || p.Email == "" {
		return err
	}
	return s.channelsOfAccounts(ctx, q, tenantID, p.AppleAccounts(), func(uc store.AppleUserChannel, keyedOnAccount bool) error {
		how := "found by your account name"
		if keyedOnAccount {
			how = "keyed on your account name (a Shared iPad)"
		}
		// By the day, as an admin is shown it: the admin who exports holds
		// the archive, and its time is when the person logged in.
		part.Records = append(part.Records, privacy.ExportRecord{Name: "Your account's channel on device " + uc.DeviceID + " (" + uc.ID + ")",
			Value: fmt.Sprintf("open, %s; opened on %s", how, uc.CreatedAt.UTC().Format(time.DateOnly))})
		d, err := q.Devices().Get(ctx, tenantID, uc.DeviceID)
		if err != nil {
			return err
		}
		if d.SubjectID == subjectID && privacy.Ownership(d.Ownership).PersonallyOwned() {
			return nil // exportDevice gives this device's channels whole
		}
		if part.Records, err = appendCommands(ctx, q, d, commandsOn{userChannel: uc.ID}, part.Records); err != nil {
			return err
		}
		part.AuditAbout = append(part.AuditAbout, privacy.AuditSelection{Target: uc.DeviceID, Keep: func(e store.AuditEntry) bool {
			// A lookup is about the account, whoever's it is: the access
			// record of the person it names says so.
			return e.Action != "mdm.user_channel.lookup" && auditedChannel(e) == uc.ID
		}})
		return nil
	})
}

// auditedChannel is the user channel an audit entry names, if any.
func auditedChannel(e store.AuditEntry) string {
	var details struct {
		UserChannel string `json:"user_channel"`
	}
	if json.Unmarshal(e.Details, &details) != nil {
		return ""
	}
	return details.UserChannel
}

// appendCommands adds a record per command of device d still held (until
// retention purges it) on the channels on selects: what it asked, its
// state and times, who asked and why, and the device's error chain if it
// failed; never its payload, which may hold a secret and is gone once it finished.
func appendCommands(ctx context.Context, q store.Queries, d store.Device, on commandsOn, recs []privacy.ExportRecord) ([]privacy.ExportRecord, error) {
	err := eachCommand(ctx, q, d.TenantID, d.ID, func(c store.Command) error {
		if !on.selects(c.UserChannel) {
			return nil
		}
		v := fmt.Sprintf("%s; queued %s by %s, sent %s, finished %s", c.State, privacy.ExportTime(c.CreatedAt), c.RequestedBy,
			privacy.ExportTime(c.SentAt), privacy.ExportTime(c.CompletedAt))
		if c.Reason != "" {
			v += "; reason given: " + c.Reason
		}
		if c.ErrorChain != "" {
			v += "; " + errorChainText(c.ErrorChain)
		}
		recs = append(recs, privacy.ExportRecord{Name: "Command " + c.RequestType + " (" + c.ID + ")", Value: v})
		return nil
	})
	return recs, err
}

// commandsOn selects the commands of a device an export lists by channel.
type commandsOn struct {
	everyChannel bool   // the device's own and every user channel's
	userChannel  string // or this channel's ("": the device's own)
}

func (c commandsOn) selects(userChannel string) bool {
	return c.everyChannel || userChannel == c.userChannel
}

// errorChainText is every entry of a stored error chain as the admin's view
// of the command has it (domain, code and the description kept), not only
// the first: the person sees what their employer sees.
func errorChainText(chain string) string {
	var entries []mdmproto.ErrorChainItem
	if json.Unmarshal([]byte(chain), &entries) != nil || len(entries) == 0 {
		return "the device reported an error"
	}
	parts := make([]string, 0, len(entries))
	for _, e := range entries {
		p := fmt.Sprintf("%s error %d", e.ErrorDomain, e.ErrorCode)
		if msg := strings.TrimSpace(e.LocalizedDescription); msg != "" {
			p += ": " + msg
		}
		parts = append(parts, p)
	}
	return "error: " + strings.Join(parts, "; caused by ")
}

func openOrClosed(checkedOut bool) string {
	if checkedOut {
		return "closed"
	}
	return "open"
}
