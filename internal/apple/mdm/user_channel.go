package mdm

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// User channels: each user who logs in on an enrolled Mac (or a Shared
// iPad) gets an MDM channel of their own, for profiles installed in their
// account. The device signs for its users with its identity, so a user
// channel is only as good as its device channel: every message on one
// passes the device channel's checks first. Apple sends no CheckOut on a
// user channel: one closes when its device leaves, or when an admin closes
// it. Steward keeps no user's name: the channel is found by a keyed index
// of the user's ID, and on an organisation's device an admin who knows the
// account name can find its channel by a keyed index of that. Both indexes
// mix in the device, so they do not link one person's accounts across Macs.

// UserChannelRequest reports whether rt can be sent on a user channel:
// Steward sends profile commands there, which Apple supports on macOS user
// channels and Shared iPad users. Inventory stays on the device channel.
func UserChannelRequest(rt mdmproto.RequestType) bool {
	switch rt {
	case mdmproto.RequestInstallProfile, mdmproto.RequestRemoveProfile, mdmproto.RequestProfileList:
		return true
	}
	return false
}

// sharedIPadUserID is the UserID every Shared iPad user channel sends: its
// users are told apart by their short name (the Managed Apple ID).
const sharedIPadUserID = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

// userKey is what identifies the user on a device: for a User
// Enrollment's user the EnrollmentUserID, which Apple requires in every
// message of that channel, TokenUpdate and command results alike, while
// the UserID it may add is optional; otherwise the UserID (a GUID); on a
// Shared iPad the short name, a Managed Apple Account, in the form the
// erasure derives from the person's address (personIndexes).
func userKey(e mdmproto.Enrollment) string {
	switch {
	case e.EnrollmentUserID != "":
		return "enrollment:" + e.EnrollmentUserID
	case e.UserID != "" && !strings.EqualFold(e.UserID, sharedIPadUserID):
		return "id:" + e.UserID
	}
	return "name:" + accountName(e.UserShortName)
}

// accountName is the form account names are indexed in: Apple's account
// names do not depend on case, and a person's address is kept lower-case.
func accountName(shortName string) string { return strings.ToLower(strings.TrimSpace(shortName)) }

func (s *Service) userIndex(ctx context.Context, q store.Queries, tenantID, deviceID string, e mdmproto.Enrollment) ([]byte, error) {
	return s.priv.Vault().BlindIndex(ctx, q, tenantID, "apple.user", deviceID+"|"+userKey(e))
}

// maxUserChannels bounds the open user channels of one device. The device
// alone says who its users are (every new UserID or short name is a new
// user), so without a bound one enrolled identity could add channels, audit
// entries and push-queue entries without end. A Mac or Shared iPad has tens
// of users at most; an admin can close the channels of users who left.
const maxUserChannels = 100

// Why a user gets no channel (userTokenUpdate); UserAuthenticate says so
// earlier, as Apple's "not managed".
var (
	errDevicePending = apperr.Conflict("the device has not finished enrolling; its users' channels follow")
	errDeviceLeaving = apperr.Conflict("the device is leaving management; its users get no channel")
	errTooManyUsers  = apperr.Conflict("this device has %d open user channels, the most Steward keeps; "+
		"an administrator can close the channels of users who left", maxUserChannels)
	errUserNotManaged = apperr.New(apperr.KindGone, "Steward does not manage this user now")
)

// admitUser refuses a user of device d who has no open channel and would
// not get one: the device has not finished enrolling, is leaving, or has
// maxUserChannels open already. Under the device's row lock (as in
// userTokenUpdate) the count is exact: every channel opens under that lock.
func (s *Service) admitUser(ctx context.Context, q store.Queries, d store.Device, userIdx []byte) error {
	switch d.State {
	case store.DeviceEnrolled:
	case store.DeviceLeaving:
		return errDeviceLeaving
	default:
		return errDevicePending
	}
	_, err := q.AppleUserChannels().Find(ctx, d.TenantID, d.ID, userIdx)
	if !errors.Is(err, store.ErrNotFound) {
		return err // nil: the user's channel is open, and stays so
	}
	n, err := q.AppleUserChannels().CountOpen(ctx, d.TenantID, d.ID)
	if err == nil && n >= maxUserChannels {
		return errTooManyUsers
	}
	return err
}

// AccountIndex is the keyed index of an account's short name on a device,
// how an admin finds the user channel of an account they know.
func (s *Service) AccountIndex(ctx context.Context, q store.Queries, tenantID, deviceID, shortName string) ([]byte, error) {
	return s.priv.Vault().BlindIndex(ctx, q, tenantID, "apple.user.account", deviceID+"|"+accountName(shortName))
}

// userChannelPlatform refuses a user's TokenUpdate from a device that has
// no user channel (tokenupdate.yaml): an iPhone, and an iPad on User
// Enrollment, which is one person's enrolment already. Only a Mac and a
// Shared iPad have one; an iPad is taken before its first DeviceInformation
// says whether it is shared.
func userChannelPlatform(d store.Device) error {
	switch {
	case d.Platform == "ios":
		return apperr.Invalid("a user channel is opened by a Mac or a Shared iPad, not by an iPhone")
	case d.Platform == "ipados" && d.Ownership == string(privacy.UserEnrolled):
		return apperr.Invalid("a user channel is not opened on an iPad's User Enrollment")
	}
	return nil
}

// userCheckin handles a check-in message on a user channel.
func (s *Service) userCheckin(ctx context.Context, cert *x509.Certificate, msg mdmproto.Checkin) ([]byte, error) {
	switch m := msg.(type) {
	case *mdmproto.UserAuthenticate:
		return s.userAuthenticate(ctx, cert, m)
	case *mdmproto.TokenUpdate:
		return nil, s.userTokenUpdate(ctx, cert, m)
	case *mdmproto.DeclarativeManagement:
		if _, _, err := s.checkUserChannel(ctx, cert, m.Enrollment); err != nil {
			return nil, err
		}
		return declarativeResponse(m)
	}
	return nil, apperr.Invalid("%s is not a user-channel message", msg.MessageType())
}

// userAuthenticate answers a user's login. A user whose TokenUpdate would
// be refused gets 410, Apple's answer for a user the server will not
// manage: the device then asks nothing more for them until they log in
// again. Read without a lock, the count is advice; the TokenUpdate decides.
//
// Only a Mac enrolled by device enrolment sends UserAuthenticate
// (userauthenticate.yaml: macOS, User Enrollment forbidden); anything else
// sending one gets 400, never a challenge, and nothing is stored.
func (s *Service) userAuthenticate(ctx context.Context, cert *x509.Certificate, m *mdmproto.UserAuthenticate) ([]byte, error) {
	if m.IsUserEnrollment() {
		return nil, apperr.Invalid("UserAuthenticate is not sent on a User Enrollment: its users' channels open with their TokenUpdate")
	}
	_, d, err := s.checkUserChannel(ctx, cert, m.Enrollment)
	if err != nil {
		return nil, err
	}
	if err := sentByAMac(d, m.MessageType()); err != nil {
		return nil, err
	}
	q := s.st.Read()
	userIdx, err := s.userIndex(ctx, q, d.TenantID, d.ID, m.Enrollment)
	if err != nil {
		return nil, err
	}
	if err := s.admitUser(ctx, q, d, userIdx); errors.Is(err, errDevicePending) || errors.Is(err, errDeviceLeaving) || errors.Is(err, errTooManyUsers) {
		return nil, errUserNotManaged
	} else if err != nil {
		return nil, err
	}
	return userAuthenticateResponse(m)
}

// userAuthenticateResponse answers Apple's two-step UserAuthenticate
// handshake. The first step gets a zero-length DigestChallenge: no password
// digest is needed, the device's identity vouches for its users. A device
// that sends the second step anyway (a DigestResponse) gets what Apple
// documents for a digest the server does not take: 200 and an empty
// AuthToken. Steward checks no digest, so the user goes on without a token.
func userAuthenticateResponse(m *mdmproto.UserAuthenticate) ([]byte, error) {
	if m.DigestResponse != "" {
		return plist.Marshal(map[string]string{"AuthToken": ""}, plist.XMLFormat)
	}
	return plist.Marshal(map[string]string{"DigestChallenge": ""}, plist.XMLFormat)
}

// userTokenUpdate opens (or re-registers) the user's channel. The device
// is locked before the user's channel is touched (the device channel's
// checks may already have moved it to a renewed certificate, as in a
// device check-in; a deadlock with a departure, which takes the device
// first, is retried). Every departure locks the device before it closes
// its user channels, with statements that would not see one inserted and
// not committed yet: a departure under way is waited for and the device
// found leaving, and one that comes later closes the channel opened here.
// The lock also makes the device's users' TokenUpdates take turns counting
// its open channels. The device channel's write then fails if it left.
func (s *Service) userTokenUpdate(ctx context.Context, cert *x509.Certificate, m *mdmproto.TokenUpdate) error {
	if err := checkPushRegistration(m); err != nil {
		return err
	}
	return s.st.Tx(ctx, func(q store.Queries) error {
		ch, d, err := s.channelAndDevice(ctx, q, cert, m.Enrollment)
		if err != nil {
			return err
		}
		if d, err = q.Devices().Lock(ctx, ch.TenantID, ch.DeviceID); err != nil {
			return err
		}
		if d.Left() {
			return ErrUnknownDevice
		}
		if err := userChannelPlatform(d); err != nil {
			return err
		}
		// A user's channel is woken through its device's push certificate.
		if m.Topic != ch.Topic {
			return apperr.Invalid("the user's TokenUpdate names a Topic other than its device's")
		}
		now := s.clock()
		if err := s.changeChannel(ctx, q, ch, store.ChannelChange{At: now}); err != nil {
			return err
		}
		userIdx, err := s.userIndex(ctx, q, ch.TenantID, ch.DeviceID, m.Enrollment)
		if err != nil {
			return err
		}
		if err := s.admitUser(ctx, q, d, userIdx); err != nil {
			return err
		}
		// None for a user who sent no short name (no account to find), nor
		// on an employee's own device, where the organisation has no
		// business asking which accounts it has (LookupUserChannel).
		var accountIdx []byte
		if strings.TrimSpace(m.UserShortName) != "" && !privacy.Ownership(d.Ownership).PersonallyOwned() {
			if accountIdx, err = s.AccountIndex(ctx, q, ch.TenantID, ch.DeviceID, m.UserShortName); err != nil {
				return err
			}
		}
		id := store.NewID()
		uc, err := q.AppleUserChannels().Open(ctx, store.AppleUserChannel{ID: id, TenantID: ch.TenantID,
			DeviceID: ch.DeviceID, UserIndex: userIdx, AccountIndex: accountIdx, Topic: m.Topic, PushToken: m.Token,
			PushMagic: m.PushMagic, LastCheckin: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		if uc.ID != id {
			// The open channel kept its ID: a token refreshed, perhaps after
			// APNs dropped the last one, so waiting commands need a push.
			open, err := q.Commands().OpenOnChannel(ctx, uc.TenantID, uc.DeviceID, uc.ID)
			if err != nil || open == 0 {
				return err
			}
			_, err = q.AppleUserChannels().SchedulePush(ctx, uc.TenantID, []string{uc.ID}, now)
			return err
		}
		e := iam.Actor{Type: store.ActorDevice, ID: ch.DeviceID}.Entry(ch.TenantID, "mdm.user_channel.open", "device", ch.DeviceID, audit.OutcomeSuccess)
		// The entry's time is when the user first logged in: tied to the
		// channel only where the policy shows usage logs, as the channel's
		// own times are (hideUsage). Otherwise it says that some user's
		// channel opened on the device.
		shown, err := showsUsage(ctx, q, d)
		if err != nil {
			return err
		}
		if shown {
			e.Details = map[string]any{"user_channel": uc.ID}
		}
		return audit.Append(ctx, q, e)
	})
}

// CloseUserChannel closes one of a device's user channels for good, as an
// admin does for a user who left: its token and indexes go, and its open
// commands are cancelled. The user's next TokenUpdate opens a new channel.
func (s *Service) CloseUserChannel(ctx context.Context, tenantID, deviceID, id, reason string, actor iam.Actor) (store.AppleUserChannel, error) {
	reason = strings.TrimSpace(reason)
	chain, err := cancelledChain("cancelled: an administrator closed the user's channel", reason)
	if err != nil {
		return store.AppleUserChannel{}, err
	}
	var uc store.AppleUserChannel
	err = s.st.Tx(ctx, func(q store.Queries) error {
		d, locked, err := lockedUserChannel(ctx, q, tenantID, deviceID, id)
		if err != nil {
			return err
		}
		uc = locked
		if uc.CheckedOut {
			return apperr.Conflict("this user channel is closed already")
		}
		cancelled, err := s.closeUserChannel(ctx, q, uc, chain)
		if err != nil {
			return err
		}
		if uc, err = q.AppleUserChannels().Get(ctx, tenantID, id); err != nil {
			return err
		}
		// Shown as the list shows it (UserChannels).
		shown := []store.AppleUserChannel{uc}
		if err := hideUsage(ctx, q, d, shown); err != nil {
			return err
		}
		uc = shown[0]
		e := actor.Entry(tenantID, "mdm.user_channel.close", "device", deviceID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"user_channel": id, "commands_cancelled": cancelled}
		return audit.Append(ctx, q, e)
	})
	return uc, err
}

// hideUsage blanks, in place, what user channels of device d tell of their
// users' activity unless d's policy shows usage logs: no last check-in,
// and their times by the day only.
func hideUsage(ctx context.Context, q store.Queries, d store.Device, ucs []store.AppleUserChannel) error {
	if shown, err := showsUsage(ctx, q, d); shown || err != nil {
		return err
	}
	for i := range ucs {
		ucs[i].LastCheckin = time.Time{}
		ucs[i].CreatedAt, ucs[i].UpdatedAt = byDay(ucs[i].CreatedAt), byDay(ucs[i].UpdatedAt)
	}
	return nil
}

// HideUserChannelUsage is hideUsage for commands of device d: one on a
// user channel is delivered and answered only while its user is logged
// in, so unless d's policy shows usage logs its delivery and answer are
// given by the day only, as the channel's own times are.
func HideUserChannelUsage(ctx context.Context, q store.Queries, d store.Device, cmds []store.Command) error {
	if !slices.ContainsFunc(cmds, func(c store.Command) bool { return c.UserChannel != "" }) {
		return nil
	}
	if shown, err := showsUsage(ctx, q, d); shown || err != nil {
		return err
	}
	UserChannelTimesByDay(cmds)
	return nil
}

// UserChannelTimesByDay gives the delivery and answer of the user channel
// commands among cmds by the day only, whatever the policy: for a caller
// that could not read it and must not show more than it may.
func UserChannelTimesByDay(cmds []store.Command) {
	for i, c := range cmds {
		if c.UserChannel != "" {
			cmds[i].SentAt, cmds[i].CompletedAt = byDay(c.SentAt), byDay(c.CompletedAt)
		}
	}
}

// showsUsage says whether device d's policy shows its usage logs.
func showsUsage(ctx context.Context, q store.Queries, d store.Device) (bool, error) {
	settings, err := privacy.ViewSettings(ctx, q, d.TenantID)
	if err != nil {
		return false, err
	}
	policy, err := privacy.EffectivePolicy(ctx, q, settings, d)
	return err == nil && policy.Mode(privacy.Ownership(d.Ownership), privacy.UsageLogs) == privacy.Show, err
}

// byDay is t to the day, in UTC; the zero time stays zero.
func byDay(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(24 * time.Hour)
}

// closeUserChannel closes uc, whose device the caller locked, and cancels
// its open commands with chain; it returns how many it cancelled.
func (s *Service) closeUserChannel(ctx context.Context, q store.Queries, uc store.AppleUserChannel, chain string) (int, error) {
	now := s.clock()
	if err := q.AppleUserChannels().CheckOut(ctx, uc.TenantID, uc.ID, now); err != nil {
		return 0, err
	}
	cancelled, err := q.Commands().CancelOpenForUser(ctx, uc.TenantID, uc.DeviceID, uc.ID, chain, now)
	if err != nil {
		return 0, err
	}
	for _, cmd := range cancelled {
		if err := s.finished(ctx, q, cmd); err != nil {
			return 0, err
		}
	}
	return len(cancelled), nil
}

// lockedUserChannel locks device deviceID, as a departure locks it, and
// reads its user channel id. A departure, CloseUserChannel and
// EnqueueForUser then run one after the other: a channel is closed and its
// commands cancelled either before a command is queued on it or after.
func lockedUserChannel(ctx context.Context, q store.Queries, tenantID, deviceID, id string) (store.Device, store.AppleUserChannel, error) {
	d, err := q.Devices().Lock(ctx, tenantID, deviceID)
	if err != nil {
		return d, store.AppleUserChannel{}, err
	}
	uc, err := q.AppleUserChannels().Get(ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && uc.DeviceID != deviceID) {
		return d, uc, apperr.NotFound("user channel")
	}
	return d, uc, err
}

// forgetAccounts is the privacy core's hook for a device whose personal
// data is erased: its user channels forget their account names, so an
// erased person's account cannot be looked up on a corporate Mac that stays
// managed. The channels keep working; a user's next TokenUpdate brings the
// account index back for whoever then uses the account.
func (s *Service) forgetAccounts(ctx context.Context, q store.Queries, d store.Device, rows map[string]int) error {
	n, err := q.AppleUserChannels().ForgetAccounts(ctx, d.TenantID, d.ID)
	rows["apple_user_channel_accounts"] += n
	return err
}

// erasedPersonChain is why an erased person's Shared iPad channel's
// commands were cancelled.
const erasedPersonChain = `[{"LocalizedDescription":"cancelled: the user was erased"}]`

// replacedAccountChain is why the commands of a Shared iPad channel keyed
// on a Managed Apple Account an admin replaced were cancelled.
const replacedAccountChain = `[{"LocalizedDescription":"cancelled: the user's Managed Apple Account was replaced"}]`

// forgetPerson is the privacy core's hook for an erased person. Their
// account may be on devices not assigned to them (a Shared iPad, a
// colleague's Mac), so every open user channel of the tenant is checked
// against what derives from the person's account names (their e-mail, and
// their Managed Apple Account when it differs): see forgetAccountNames.
func (s *Service) forgetPerson(ctx context.Context, q store.Queries, sub store.Subject, p privacy.Profile, rows map[string]int) error {
	if p.Email == "" {
		return nil
	}
	return s.forgetAccountNames(ctx, q, sub.TenantID, p.AppleAccounts(), erasedPersonChain, true, rows)
}

// forgetReplacedAccount is the privacy core's hook for a person's Managed
// Apple Account replaced by another ("" when it was their e-mail): what
// derives from the old name goes as at erasure, while it is still theirs
// alone. A change is refused while a User Enrollment names the account
// (userEnrolledUnder).
func (s *Service) forgetReplacedAccount(ctx context.Context, q store.Queries, sub store.Subject, account string) error {
	if err := userEnrolledUnder(ctx, q, sub, s.clock()); err != nil || account == "" {
		return err
	}
	return s.forgetAccountNames(ctx, q, sub.TenantID, []string{account}, replacedAccountChain, false, map[string]int{})
}

// userEnrolledUnder refuses to change the account of person sub while one
// of their User Enrollments names it: a device enrolled under it, or a link
// whose profile may still be downloaded, or installed until
// installableUntil. Apple refuses an update of
// the enrolment profile that changes its AssignedManagedAppleID, so the
// identity renewals would fail and the device drop out of management when
// its certificate expired.
func userEnrolledUnder(ctx context.Context, q store.Queries, sub store.Subject, now time.Time) error {
	es, err := q.Enrolments().ListForSubject(ctx, sub.TenantID, sub.ID)
	if err != nil {
		return err
	}
	for _, e := range es {
		if !e.UserEnrollment {
			continue
		}
		switch e.State {
		case EnrolmentAccepted:
			if !now.Before(installableUntil(e)) {
				continue // nothing it handed out can be installed any more
			}
			return apperr.Conflict("an enrolment link of this person's (User Enrollment) names their current Managed Apple Account; " +
				"revoke it before changing the account, or wait until an hour and a quarter after it expires")
		case store.EnrolmentUsed:
			ch, err := q.AppleChannels().GetByEnrolment(ctx, sub.TenantID, e.ID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && ch.CheckedOut) {
				continue
			}
			if err != nil {
				return err
			}
			return apperr.Conflict("a device of this person's enrolled by User Enrollment under their current Managed Apple Account, " +
				"which Apple lets no update of its enrolment change; retire the device before changing the account, then enrol it again")
		}
	}
	return nil
}

// forgetAccountNames checks every open user channel of the tenant against
// what derives from the account names: a matching account index goes, so
// the account cannot be looked up, and a Shared iPad channel keyed on one
// of them closes, its user index being the account's. (Closed channels
// hold no index.) A user who logs in again opens a new channel. chain is
// why the closed channels' commands were cancelled; erased strips the
// descriptions the devices wrote into the channels' failed commands, which
// name what the account holds on a device that is not theirs (their own
// devices' go with the devices' data, forgetErrorText); rows counts what
// went.
func (s *Service) forgetAccountNames(ctx context.Context, q store.Queries, tenantID string, accounts []string, chain string,
	erased bool, rows map[string]int) error {
	return s.channelsOfAccounts(ctx, q, tenantID, accounts, func(uc store.AppleUserChannel, keyedOnAccount bool) error {
		if erased {
			if err := forgetUserChannelErrorText(ctx, q, uc, rows); err != nil {
				return err
			}
		}
		if keyedOnAccount {
			// Locked as for CloseUserChannel: no command is queued on
			// the channel while it closes.
			if _, err := q.Devices().Lock(ctx, uc.TenantID, uc.DeviceID); err != nil {
				return err
			}
			if _, err := s.closeUserChannel(ctx, q, uc, chain); err != nil {
				return err
			}
			rows["apple_user_channels_closed"]++
			return nil
		}
		if err := q.AppleUserChannels().ForgetAccount(ctx, uc.TenantID, uc.ID); err != nil {
			return err
		}
		rows["apple_user_channel_accounts"]++
		return nil
	})
}

// channelsOfAccounts calls fn for every open user channel of the tenant
// that derives from one of the account names: keyed on it (a Shared iPad
// channel, keyedOnAccount), or indexed by it (an account that logged in
// on a Mac). Each device's indexes mix in the device, so each is computed
// per device.
func (s *Service) channelsOfAccounts(ctx context.Context, q store.Queries, tenantID string, accounts []string,
	fn func(uc store.AppleUserChannel, keyedOnAccount bool) error) error {
	const page = 500
	var device, afterID string
	var accountIdx, userIdx [][]byte
	for {
		ucs, err := q.AppleUserChannels().ListOpen(ctx, tenantID, device, afterID, page)
		if err != nil {
			return err
		}
		for _, uc := range ucs {
			if uc.DeviceID != device || accountIdx == nil {
				device = uc.DeviceID
				if accountIdx, userIdx, err = s.personIndexes(ctx, q, uc.TenantID, device, accounts); err != nil {
					return err
				}
			}
			afterID = uc.ID
			switch {
			case slices.ContainsFunc(userIdx, func(idx []byte) bool { return bytes.Equal(uc.UserIndex, idx) }):
				err = fn(uc, true)
			case slices.ContainsFunc(accountIdx, func(idx []byte) bool { return bytes.Equal(uc.AccountIndex, idx) }):
				err = fn(uc, false)
			}
			if err != nil {
				return err
			}
		}
		if len(ucs) < page {
			return nil
		}
	}
}

// personIndexes are the account and user indexes on device of each of a
// person's account names.
func (s *Service) personIndexes(ctx context.Context, q store.Queries, tenantID, device string, accounts []string) (accountIdx, userIdx [][]byte, err error) {
	for _, a := range accounts {
		ai, err := s.AccountIndex(ctx, q, tenantID, device, a)
		if err != nil {
			return nil, nil, err
		}
		ui, err := s.userIndex(ctx, q, tenantID, device, mdmproto.Enrollment{UserShortName: a})
		if err != nil {
			return nil, nil, err
		}
		accountIdx, userIdx = append(accountIdx, ai), append(userIdx, ui)
	}
	return accountIdx, userIdx, nil
}

// userChannelFor passes the device channel's checks, then finds the open
// user channel the message names; ErrNotFound when the user has none.
func (s *Service) userChannelFor(ctx context.Context, q store.Queries, cert *x509.Certificate, sender mdmproto.Enrollment) (store.AppleUserChannel, store.Device, error) {
	ch, d, err := s.channelAndDevice(ctx, q, cert, sender)
	if err != nil {
		return store.AppleUserChannel{}, d, err
	}
	idx, err := s.userIndex(ctx, q, ch.TenantID, ch.DeviceID, sender)
	if err != nil {
		return store.AppleUserChannel{}, d, err
	}
	uc, err := q.AppleUserChannels().Find(ctx, ch.TenantID, ch.DeviceID, idx)
	return uc, d, err
}

// userConnect is Connect on a user channel: the result recorded, then the
// channel's next command. A user with no open channel (no TokenUpdate yet,
// or closed since) has no commands.
func (s *Service) userConnect(ctx context.Context, cert *x509.Certificate, res mdmproto.Result) ([]byte, error) {
	var payload []byte
	err := s.exchange(ctx, res, func(q store.Queries, claim bool) error {
		uc, d, err := s.userChannelFor(ctx, q, cert, res.Enrollment)
		if errors.Is(err, store.ErrNotFound) {
			// A late answer on a channel closed since (its commands were
			// cancelled): dropped, unless it names another device's command.
			if res.Status != mdmproto.StatusIdle {
				return s.dropStrayResult(ctx, q, d, true, res)
			}
			return nil
		}
		if err != nil {
			return err
		}
		now := s.clock()
		if now.Sub(uc.LastCheckin) > lastSeenGranularity {
			if err := q.AppleUserChannels().Touch(ctx, uc.TenantID, uc.ID, now); errors.Is(err, store.ErrNotFound) {
				return ErrUnknownDevice // closed meanwhile: its device left, or its user
			} else if err != nil {
				return err
			}
		}
		if res.Status != mdmproto.StatusIdle {
			if err := s.recordResult(ctx, q, d, uc.ID, res); err != nil {
				return err
			}
		}
		if !claim {
			return nil
		}
		next, err := s.sendNext(ctx, q, d, uc.ID, res.Status == mdmproto.StatusIdle, now)
		if err != nil || next.ID != "" {
			payload, err = s.openDelivery(next, err)
			return err
		}
		return s.retryPutOff(ctx, q, uc.TenantID, uc.DeviceID, uc.ID, res.Status, now)
	})
	return payload, s.afterDelivery(ctx, err)
}

// EnqueueForUser queues req on one of device deviceID's user channels: a
// profile command (UserChannelRequest), with the device's ownership rules.
func (s *Service) EnqueueForUser(ctx context.Context, tenantID, deviceID, userChannelID string, req mdmproto.Request, reason string, actor iam.Actor) (store.Command, error) {
	if !UserChannelRequest(req.RequestType()) {
		return store.Command{}, apperr.Invalid("%s is not sent on a user channel; InstallProfile, RemoveProfile and ProfileList are", req.RequestType())
	}
	var cmd store.Command
	err := s.st.Tx(ctx, func(q store.Queries) error {
		d, uc, err := lockedUserChannel(ctx, q, tenantID, deviceID, userChannelID)
		if err != nil {
			return err
		}
		if uc.CheckedOut {
			return apperr.Conflict("this user channel is closed: the device left, or an administrator closed it")
		}
		settings, err := privacy.ViewSettings(ctx, q, tenantID)
		if err != nil {
			return err
		}
		if cmd, err = s.prepare(ctx, q, d, req, settings, actor); err != nil {
			return err
		}
		cmd.UserChannel, cmd.Reason = uc.ID, reason
		if err := s.saveCommands(ctx, q, []store.Command{cmd}); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.command.enqueue", "device", deviceID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"request_type": cmd.RequestType, "devices": 1, "user_channel": uc.ID}
		if target := commandTarget(req); target != nil {
			e.Details["target"] = target
		}
		return audit.Append(ctx, q, e)
	})
	return cmd, err
}

// UserChannels lists a device's user channels.
//
// A channel's times tell when its user used the device. Unless the
// tenant's policy shows usage logs for the device (it hides them by
// default, and drops them for shared devices; on a personal device the
// owner must have accepted it: EffectivePolicy), the last check-in is left
// out and the other times are given to the day only: hidden usage is seen
// only after a reason is given, and channel times have no such reveal.
func (s *Service) UserChannels(ctx context.Context, tenantID, deviceID string) ([]store.AppleUserChannel, error) {
	return userChannelsOf(ctx, s.st.Read(), tenantID, deviceID)
}

func userChannelsOf(ctx context.Context, q store.Queries, tenantID, deviceID string) ([]store.AppleUserChannel, error) {
	d, err := q.Devices().Get(ctx, tenantID, deviceID)
	if err != nil {
		return nil, err
	}
	ucs, err := q.AppleUserChannels().List(ctx, tenantID, deviceID)
	if err != nil {
		return nil, err
	}
	return ucs, hideUsage(ctx, q, d, ucs)
}

// LookupUserChannel finds the user channel of an account name on a device
// (none when the account never logged in), its times as UserChannels gives
// them. Asking whether an account used a device is a question about a
// person, so it needs a reason, as a reveal does, and is audited with it,
// without the name, which Steward does not keep. When the account is a
// person's Steward knows, their access record says that it was asked,
// found or not. A device of another tenant is not found before anything
// else is checked. A personally owned device's accounts are not indexed
// (userTokenUpdate), so asking there is refused rather than answered
// "none".
func (s *Service) LookupUserChannel(ctx context.Context, tenantID, deviceID, account, reason string, actor iam.Actor) ([]store.AppleUserChannel, error) {
	d, err := s.st.Read().Devices().Get(ctx, tenantID, deviceID)
	if err != nil {
		return nil, err
	}
	if privacy.Ownership(d.Ownership).PersonallyOwned() {
		return nil, errPersonalAccounts
	}
	if strings.TrimSpace(account) == "" {
		return nil, apperr.Invalid("account is required: the account name to look for (GET …/user-channels lists every channel)").With("field", "account")
	}
	reason, err = privacy.ValidateReason(reason)
	if err != nil {
		return nil, apperr.Invalid("looking up an account asks whether a person used this device: %s", apperr.As(err).Message).With("field", "reason")
	}
	var found []store.AppleUserChannel
	err = s.st.Tx(ctx, func(q store.Queries) error {
		ucs, err := userChannelsOf(ctx, q, tenantID, deviceID)
		if err != nil {
			return err
		}
		idx, err := s.AccountIndex(ctx, q, tenantID, deviceID, account)
		if err != nil {
			return err
		}
		found = slices.DeleteFunc(ucs, func(uc store.AppleUserChannel) bool { return !bytes.Equal(uc.AccountIndex, idx) })
		if err := s.recordAccountLookup(ctx, q, tenantID, deviceID, account, reason, actor); err != nil {
			return err
		}
		e := actor.Entry(tenantID, "mdm.user_channel.lookup", "device", deviceID, audit.OutcomeSuccess)
		e.Reason = reason
		e.Details = map[string]any{"found": len(found) > 0}
		return audit.Append(ctx, q, e)
	})
	return found, err
}

// errPersonalAccounts refuses an account lookup on a personally owned
// device: which accounts an employee's own device has is not the
// organisation's to ask, so Steward keeps no account index there.
var errPersonalAccounts = apperr.Conflict("this device is personally owned: Steward keeps no account names of its users, " +
	"so it cannot look an account up here (GET …/user-channels lists its channels)")

// AccountLookupAccess is the access-record action of an admin who asked
// whether a person's account used a device.
const AccountLookupAccess = "account_lookup"

// recordAccountLookup writes to the access record of the person account
// names, when Steward knows them, that actor asked whether it used device
// deviceID, and why. It is written whatever the answer, which it does not
// give: the question was about them either way. An account that is no
// known person's (a Mac's local short name, say) leaves no record.
func (s *Service) recordAccountLookup(ctx context.Context, q store.Queries, tenantID, deviceID, account, reason string, actor iam.Actor) error {
	sub, known, err := s.priv.AccountHolder(ctx, q, tenantID, account)
	if err != nil || !known {
		return err
	}
	return privacy.RecordAccess(ctx, q, store.AccessRecord{ID: store.NewID(), TenantID: tenantID, SubjectID: sub.ID, DeviceID: deviceID,
		Actor: actor.Ref(), Action: AccountLookupAccess, Fields: []string{"user.account"}, Reason: reason, At: s.clock()})
}
