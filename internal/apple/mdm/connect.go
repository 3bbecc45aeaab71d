package mdm

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// Connect handles the command endpoint: it records the result the device
// sends (through the privacy gate), then answers with the next command, or
// nil when the queue is empty.
//
// Apple's semantics: Idle asks for work; Acknowledged and Error finish a
// command; NotNow means "not now": the command stays queued but is not
// offered again until the device next says Idle.
func (s *Service) Connect(ctx context.Context, cert *x509.Certificate, body []byte) ([]byte, error) {
	res, err := mdmproto.DecodeResult(body)
	if err != nil {
		return nil, apperr.Invalid("%v", err)
	}
	if res.IsUserChannel() {
		return s.userConnect(ctx, cert, res)
	}
	if res.Status == mdmproto.StatusIdle {
		if idle, err := s.quietIdle(ctx, cert, res); idle || err != nil {
			return nil, err
		}
	}
	var payload []byte
	err = s.exchange(ctx, res, func(q store.Queries, claim bool) error {
		ch, d, err := s.channelAndDevice(ctx, q, cert, res.Enrollment)
		if err != nil {
			return err
		}
		now := s.clock()
		// A stale device's last-seen time is always old enough to be written,
		// so its flag is cleared here too.
		if now.Sub(d.LastSeenAt) > lastSeenGranularity {
			if err := q.Devices().Touch(ctx, ch.TenantID, ch.DeviceID, now); err != nil {
				return err
			}
		}
		if res.Status != mdmproto.StatusIdle {
			if err := s.recordResult(ctx, q, d, "", res); err != nil {
				return err
			}
			if d.Platform == "" {
				// Its answer may have named it as a device Steward does not
				// manage, which is now leaving (learnPlatform).
				if d, err = q.Devices().Get(ctx, ch.TenantID, ch.DeviceID); err != nil {
					return err
				}
			}
		}
		if !claim {
			return nil
		}
		next, err := s.sendNext(ctx, q, d, "", res.Status == mdmproto.StatusIdle, now)
		if err != nil || next.ID != "" {
			payload, err = s.openDelivery(next, err)
			return err
		}
		return s.retryPutOff(ctx, q, ch.TenantID, ch.DeviceID, "", res.Status, now)
	})
	return payload, s.afterDelivery(ctx, err)
}

// notNowRetry is how long after an exchange that left put-off commands
// behind Steward pushes the channel again.
const notNowRetry = time.Minute

// retryPutOff schedules a push for a channel whose exchange ends, in q,
// with commands still open on an answer other than NotNow. A device polls
// again by itself only when its last answer was NotNow; after a NotNow and
// then another command's result it waits for a push, and the command it put
// off would wait for some unrelated one. It runs in the exchange's own
// transaction, after the claim of the next command found none: the count is
// then of put-off commands alone, read where the queue's pages are at hand.
func (s *Service) retryPutOff(ctx context.Context, q store.Queries, tenantID, deviceID, userChannel string, last mdmproto.Status, now time.Time) error {
	if last == mdmproto.StatusIdle || last == mdmproto.StatusNotNow {
		return nil
	}
	open, err := q.Commands().OpenOnChannel(ctx, tenantID, deviceID, userChannel)
	if err != nil || open == 0 {
		return err
	}
	at := now.Add(notNowRetry)
	if userChannel == "" {
		_, err = q.AppleChannels().SchedulePush(ctx, tenantID, []string{deviceID}, at)
		return err
	}
	_, err = q.AppleUserChannels().SchedulePush(ctx, tenantID, []string{userChannel}, at)
	return err
}

// sendNext claims the next command of device d's channel (userChannel
// empty) or of one of its user channels; a command the device left
// unanswered too often is abandoned, and a full wipe no longer allowed is
// withheld, for the one after it. It returns the zero Command when none is
// waiting.
func (s *Service) sendNext(ctx context.Context, q store.Queries, d store.Device, userChannel string, idle bool, now time.Time) (store.Command, error) {
	for {
		next, err := q.Commands().SendNext(ctx, d.TenantID, d.ID, userChannel, idle, now)
		if errors.Is(err, store.ErrNotFound) {
			return store.Command{}, nil
		}
		if err != nil {
			return store.Command{}, err
		}
		if d.State == store.DeviceLeaving {
			takes, err := s.leavingTakes(ctx, q, d, next)
			if err != nil {
				return store.Command{}, err
			}
			if !takes {
				// Queued past the departure (a bulk request that read the
				// device before it): a leaving device gets its removal only.
				if err := s.failUnsent(ctx, q, next, now, "not sent: the device is leaving management"); err != nil {
					return store.Command{}, err
				}
				continue
			}
		}
		if next.Unanswered >= maxUnanswered {
			if err := s.abandon(ctx, q, next, now); err != nil {
				return store.Command{}, err
			}
			continue
		}
		withdrawn, err := s.wipeWithdrawn(ctx, q, d, next)
		if err != nil {
			return store.Command{}, err
		}
		if !withdrawn {
			return next, nil
		}
		if err := s.withholdWipe(ctx, q, next, now); err != nil {
			return store.Command{}, err
		}
	}
}

// leavingTakes says whether leaving device d is sent cmd: the removal of
// its management profile, or the renewal of its identity certificate,
// which keeps the channel that removal needs from expiring. The removal of
// any other profile is not: the withdrawal ended all other management.
func (s *Service) leavingTakes(ctx context.Context, q store.Queries, d store.Device, cmd store.Command) (bool, error) {
	removal := cmd.RequestType == string(mdmproto.RequestRemoveProfile)
	if !removal && cmd.RequestType != string(mdmproto.RequestInstallProfile) {
		return false, nil
	}
	ch, err := q.AppleChannels().Get(ctx, d.TenantID, d.ID)
	if err != nil {
		return false, err
	}
	if !removal {
		return ch.RenewalCommand == cmd.ID, nil
	}
	return s.removesManagement(cmd, ch), nil
}

// removesManagement says whether RemoveProfile command cmd removes the
// management profile of ch's enrolment; one whose payload cannot be read
// is taken not to.
func (s *Service) removesManagement(cmd store.Command, ch store.AppleChannel) bool {
	built, err := s.sealer.Open(cmd.Payload, commandAD(cmd.ID))
	if err == nil {
		var id string
		if id, err = mdmproto.RemovedProfile(built); err == nil {
			return id == mdmproto.EnrolmentIdentifier(ch.EnrolmentID)
		}
	}
	s.log.Warn("a queued RemoveProfile could not be read; it is not sent to the leaving device", "tenant", cmd.TenantID, "command", cmd.ID, "error", err.Error())
	return false
}

// wipeWithdrawn says whether cmd is a full wipe of personally owned device
// d that its rules no longer allow: Enqueue applied them, but the device
// may ask after the policy or the employee's consent changed. Only such
// wipes pay for the check; ownership never changes after enrolment.
func (s *Service) wipeWithdrawn(ctx context.Context, q store.Queries, d store.Device, cmd store.Command) (bool, error) {
	if cmd.RequestType != string(mdmproto.RequestEraseDevice) || !privacy.Ownership(d.Ownership).PersonallyOwned() {
		return false, nil
	}
	// Read shared, as the enrolment (fullWipeConsented): a policy change
	// forbidding the wipe, under way on another node, is waited for.
	settings, err := privacy.LoadSettingsShared(ctx, q, d.TenantID, s.clock())
	if err != nil {
		return false, err
	}
	consented, err := s.fullWipeConsented(ctx, q, d, settings)
	if err != nil {
		return false, err
	}
	_, refused := RequestFor(mdmproto.EraseDevice{}, d, settings, DeviceFacts{FullWipeConsented: consented})
	return refused != nil, nil
}

// wipeWithdrawnReason is a withheld wipe's error chain and audited reason.
const wipeWithdrawnReason = "full wipe no longer allowed: policy or the employee's consent changed"

// withholdWipe finishes cmd, a full wipe no longer allowed, as failed
// without sending it, and audits that Steward did so.
func (s *Service) withholdWipe(ctx context.Context, q store.Queries, cmd store.Command, now time.Time) error {
	if err := s.failUnsent(ctx, q, cmd, now, wipeWithdrawnReason); err != nil {
		return err
	}
	s.log.Warn("a queued full wipe was not sent: it is no longer allowed", "tenant", cmd.TenantID, "command", cmd.ID)
	e := iam.SystemActor.Entry(cmd.TenantID, "mdm.command.withhold", "device", cmd.DeviceID, audit.OutcomeSuccess)
	e.Reason = wipeWithdrawnReason
	e.Details = map[string]any{"command": cmd.ID, "request_type": cmd.RequestType}
	return audit.Append(ctx, q, e)
}

// dropStrayResult settles a result that answers no command sent on the
// channel it came on. One naming another device's command is refused: the
// certificate speaks for one device only. Any other is a late answer the
// device cannot help (its command purged after CommandResultRetention,
// cancelled as its user channel closed, or sent on another of its
// channels): it is dropped unread, so that the exchange still hands out
// the next command. It is logged, not audited: it changes nothing, and an
// audit entry per stray answer would let one device grow the audit trail
// without bound.
func (s *Service) dropStrayResult(ctx context.Context, q store.Queries, d store.Device, onUserChannel bool, res mdmproto.Result) error {
	cmd, err := q.Commands().Get(ctx, d.TenantID, res.CommandUUID)
	if err == nil && cmd.DeviceID != d.ID {
		return ErrWrongDevice
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	command := "(not a command ID)" // the device's text stays out of the log
	if uuid.Validate(res.CommandUUID) == nil {
		command = res.CommandUUID
	}
	s.log.InfoContext(ctx, "a result for no command open on its channel was dropped", "tenant", d.TenantID, "device", d.ID,
		"user_channel", onUserChannel, "command", command, "status", string(res.Status))
	return nil
}

// recordResult finishes the command a result answers and stores what it
// reported through the gate. The command must be one sent on the channel
// the result came on (userChannel empty for the device channel); any other
// result is dropped or refused (dropStrayResult).
func (s *Service) recordResult(ctx context.Context, q store.Queries, d store.Device, userChannel string, res mdmproto.Result) error {
	tenantID, deviceID := d.TenantID, d.ID
	cmd, err := q.Commands().Get(ctx, tenantID, res.CommandUUID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (cmd.DeviceID != deviceID || cmd.UserChannel != userChannel)) {
		return s.dropStrayResult(ctx, q, d, userChannel != "", res)
	}
	if err != nil {
		return err
	}
	if cmd.State != store.CommandSent && cmd.State != store.CommandNotNow {
		return nil // a repeated answer: the first one counted
	}
	if res.Status == mdmproto.StatusNotNow {
		// Only if the command is still at the delivery just read: an Idle
		// on the same channel may have delivered it again since (nothing
		// serialises the two on PostgreSQL), and then this NotNow answers
		// the earlier delivery, the device owes an answer to the later one,
		// and its counters stay as that delivery set them.
		err := q.Commands().PutOff(ctx, tenantID, cmd.ID, cmd.Attempts)
		if errors.Is(err, store.ErrNotFound) {
			return nil // stale, or settled meanwhile
		}
		return err
	}
	now := s.clock()
	var obs []privacy.Observation
	switch res.Status {
	case mdmproto.StatusError, mdmproto.StatusCommandFormatError:
		described, err := keepsErrorText(ctx, q, tenantID, deviceID)
		if err != nil {
			return err
		}
		chain, err := boundedErrorChain(res.ErrorChain, described)
		if err != nil {
			return err
		}
		chain = rejectionChain(cmd, res, chain, privacy.Ownership(d.Ownership).PersonallyOwned())
		cmd.State, cmd.ErrorChain, cmd.CompletedAt = store.CommandError, string(chain), now
	default:
		cmd.State, cmd.CompletedAt = store.CommandAcknowledged, now
		if obs, err = s.resultObservations(ctx, q, cmd, res); mdmproto.IsBadInput(err) {
			// Finished as failed, so a device that keeps sending a bad
			// answer does not get the command again forever; and nothing
			// of it is kept, not even the empty values a decoder built.
			cmd.State, cmd.ErrorChain, obs = store.CommandError, `[{"LocalizedDescription":"the result did not decode"}]`, nil
			s.log.Warn("a device sent an undecodable result", "request_type", cmd.RequestType, "error", mdmproto.BadInputKind(err))
		} else if err != nil {
			// The server's own failure (a read, a key not loaded yet): the
			// device gets a 5xx and sends its answer again.
			return err
		} else if note, err := s.acknowledgedNote(ctx, q, d, cmd, res, now); err != nil {
			return err
		} else if note != "" {
			cmd.ErrorChain = note // for its action: AnsweredWithoutFix
		}
	}
	// Finished without writing back the counters read: an Idle on the same
	// channel may have delivered the command again since.
	if err := q.Commands().Finish(ctx, cmd); errors.Is(err, store.ErrNotFound) {
		return nil // settled meanwhile (a concurrent answer, or cancelled as the device left)
	} else if err != nil {
		return err
	}
	if err := s.finished(ctx, q, cmd); err != nil || len(obs) == 0 {
		return err
	}
	if cmd.RequestType == string(mdmproto.RequestDeviceInformation) && d.Platform == "" {
		if departed, err := s.learnPlatform(ctx, q, tenantID, deviceID, obs); err != nil || departed {
			return err // what it reported went with the rest of its data
		}
	}
	_, err = s.priv.Gate().Admit(ctx, q, privacy.Report{TenantID: tenantID, DeviceID: deviceID,
		Source: "apple-mdm/" + cmd.RequestType, Values: obs, At: now})
	return err
}

// maxUnanswered is how many deliveries in a row a device may leave
// unanswered before Steward stops offering the command. A dropped
// connection costs one; a command that makes the device's MDM client fail
// costs one at every check-in, and would otherwise hold up the device's
// queue for good.
const maxUnanswered = 5

// abandon finishes cmd as failed: the device was offered it maxUnanswered
// times and never answered.
func (s *Service) abandon(ctx context.Context, q store.Queries, cmd store.Command, now time.Time) error {
	if err := s.failUnsent(ctx, q, cmd, now, fmt.Sprintf("the device did not answer the command in %d deliveries", maxUnanswered)); err != nil {
		return err
	}
	s.log.Warn("a command was abandoned: the device never answered it", "command", cmd.ID, "request_type", cmd.RequestType, "deliveries", maxUnanswered)
	return nil
}

// failUnsent finishes cmd, just claimed by SendNext, as failed with
// description instead of sending it; Update drops its payload.
func (s *Service) failUnsent(ctx context.Context, q store.Queries, cmd store.Command, now time.Time, description string) error {
	chain, err := json.Marshal([]mdmproto.ErrorChainItem{{LocalizedDescription: description}})
	if err != nil {
		return err
	}
	cmd.State, cmd.CompletedAt, cmd.ErrorChain = store.CommandError, now, string(chain)
	cmd.Attempts-- // it is not sent this time
	if cmd.Attempts == 0 {
		cmd.SentAt = time.Time{} // nor ever was
	}
	if err := q.Commands().Update(ctx, cmd); err != nil {
		return err
	}
	return s.finished(ctx, q, cmd)
}

func (s *Service) finished(ctx context.Context, q store.Queries, cmd store.Command) error {
	if s.hooks.CommandFinished == nil {
		return nil
	}
	return s.hooks.CommandFinished(ctx, q, cmd)
}

// resultObservations decodes the results of cmd that Steward keeps; others
// (acknowledgements of actions) only finish their command.
func (s *Service) resultObservations(ctx context.Context, q store.Queries, cmd store.Command, res mdmproto.Result) ([]privacy.Observation, error) {
	tenantID, deviceID := cmd.TenantID, cmd.DeviceID
	switch mdmproto.RequestType(cmd.RequestType) {
	case mdmproto.RequestDeviceInformation:
		r, err := mdmproto.DecodeDeviceInformation(res)
		if err != nil {
			return nil, err
		}
		// What was asked, and nothing else, however allowed: the gate only
		// knows what the policy allows.
		if dropped := r.Only(s.askedQueries(cmd)); dropped > 0 {
			s.log.Warn("a device answered DeviceInformation queries it was not asked; the answers were dropped",
				"tenant", tenantID, "command", cmd.ID, "dropped", dropped)
		}
		if err := s.capacitiesInGB(ctx, q, cmd, &r); err != nil {
			return nil, err
		}
		return deviceInformationObservations(r), nil
	case mdmproto.RequestSecurityInfo:
		r, err := mdmproto.DecodeSecurityInfo(res)
		return securityInfoObservations(r), err
	case mdmproto.RequestInstalledApplicationList:
		apps, err := mdmproto.DecodeInstalledApplicationList(res)
		if err != nil {
			return nil, err
		}
		d, err := q.Devices().Get(ctx, tenantID, deviceID)
		if err != nil {
			return nil, err
		}
		if !privacy.Ownership(d.Ownership).PersonallyOwned() {
			return appObservations(apps, false), nil
		}
		// Asked for managed apps only, the device may still have sent more.
		if apps, err = s.organisationApps(ctx, q, tenantID, deviceID, apps); err != nil {
			return nil, err
		}
		return appObservations(apps, true), nil
	case mdmproto.RequestDeviceLocation:
		r, err := mdmproto.DecodeDeviceLocation(res)
		return locationObservations(r), err
	case mdmproto.RequestCertificateList:
		list, err := mdmproto.DecodeCertificateList(res)
		if err != nil {
			return nil, err
		}
		d, err := q.Devices().Get(ctx, tenantID, deviceID)
		if err != nil {
			return nil, err
		}
		// Asked for managed certificates only, the device may still have sent more.
		if privacy.Ownership(d.Ownership).PersonallyOwned() {
			if list, err = s.organisationCertificates(ctx, q, d, list); err != nil {
				return nil, err
			}
		}
		return certificateObservations(list), nil
	case mdmproto.RequestManagedApplicationList:
		list, err := mdmproto.DecodeManagedApplicationList(res)
		if err != nil {
			return nil, err
		}
		d, err := q.Devices().Get(ctx, tenantID, deviceID)
		if err != nil {
			return nil, err
		}
		return managedAppObservations(list, privacy.Ownership(d.Ownership).PersonallyOwned()), nil
	case mdmproto.RequestProfileList:
		list, err := mdmproto.DecodeProfileList(res)
		if err != nil {
			return nil, err
		}
		if cmd.UserChannel != "" {
			// One account's profiles, not the device's: stored as
			// security.profiles they would replace the device's list with
			// that account's (on a Mac or Shared iPad others use too),
			// and the inventory has no per-account field to keep them in.
			s.log.Info("a user channel's profile list was acknowledged; nothing of it is kept", "tenant", tenantID, "command", cmd.ID)
			return nil, nil
		}
		d, err := q.Devices().Get(ctx, tenantID, deviceID)
		if err != nil {
			return nil, err
		}
		personal := privacy.Ownership(d.Ownership).PersonallyOwned()
		var ours map[string]bool
		if personal {
			if ours, err = stewardProfiles(ctx, q, d); err != nil {
				return nil, err
			}
		}
		return s.profileObservations(list, personal, ours, deviceID), nil
	}
	return nil, nil
}

// askedQueries returns the keys DeviceInformation command cmd asked for.
// A command queued before they were kept beside its payload has them read
// from the payload; one whose payload does not open asked, as far as its
// result goes, for nothing.
func (s *Service) askedQueries(cmd store.Command) []string {
	if len(cmd.Queries) > 0 {
		return cmd.Queries
	}
	built, err := s.sealer.Open(cmd.Payload, commandAD(cmd.ID))
	if err == nil {
		var queries []string
		if queries, err = mdmproto.DeviceInformationQueries(built); err == nil {
			return queries
		}
	}
	s.log.Warn("a DeviceInformation command's queries could not be read; none of its answers is kept", "tenant", cmd.TenantID, "command", cmd.ID, "error", err.Error())
	return nil
}

// forgetErrorText is the privacy core's hook for a device whose personal
// data is erased: the descriptions its device wrote into failed commands'
// error chains (kept on corporate devices, see keepsErrorText) can name
// what is on it, and are stored in clear, so they go; Apple's domain and
// code stay. Steward's own descriptions go with them.
func (s *Service) forgetErrorText(ctx context.Context, q store.Queries, d store.Device, rows map[string]int) error {
	return eachCommand(ctx, q, d.TenantID, d.ID, func(c store.Command) error {
		var chain []mdmproto.ErrorChainItem
		if c.State != store.CommandError || json.Unmarshal([]byte(c.ErrorChain), &chain) != nil || !slices.ContainsFunc(chain, hasDescription) {
			return nil
		}
		// Descriptions go; each entry's domain stays as stored, which
		// tells a device's from Steward's own.
		for i := range chain {
			chain[i].LocalizedDescription, chain[i].USEnglishDescription = "", ""
		}
		bare, err := json.Marshal(chain)
		if err != nil {
			return err
		}
		if err := q.Commands().SetErrorChain(ctx, d.TenantID, c.ID, string(bare)); err != nil {
			return err
		}
		rows["command_error_texts"]++
		return nil
	})
}

// forgetUserChannelErrorText strips the descriptions a device wrote into
// the failed commands of user channel uc, as the policy strips hidden
// ones (stripDeviceText): what the user's account holds on the device
// goes, Steward's own words stay. rows counts the commands, with those of
// erased devices.
func forgetUserChannelErrorText(ctx context.Context, q store.Queries, uc store.AppleUserChannel, rows map[string]int) error {
	return eachCommand(ctx, q, uc.TenantID, uc.DeviceID, func(c store.Command) error {
		if c.UserChannel != uc.ID || c.State != store.CommandError {
			return nil
		}
		bare, changed, err := stripDeviceText(c.ErrorChain)
		if err != nil || !changed {
			return err
		}
		if err := q.Commands().SetErrorChain(ctx, uc.TenantID, c.ID, bare); err != nil {
			return err
		}
		rows["command_error_texts"]++
		return nil
	})
}

// hasDescription says whether an error chain entry carries text.
func hasDescription(e mdmproto.ErrorChainItem) bool {
	return e.LocalizedDescription != "" || e.USEnglishDescription != ""
}

// Bounds on the error chain a device may have stored per command.
const (
	maxErrorChainItems = 5
	maxErrorText       = 300
	maxErrorChain      = 4 << 10 // bytes of JSON, unless the first entry alone is longer
)

// keepsErrorText reports whether the descriptions in a device's error
// chain may be stored with its command. They are free text the device
// writes (LocalizedDescription, USEnglishDescription) and can name the
// apps, profiles or accounts on it; commands keep them in clear for every
// admin who reads the device's commands, outside the gate that masks and
// encrypts personal fields. So they are kept only when both hold:
//   - the device is not personally owned: of an employee's own device
//     Steward holds nothing about what is theirs, as its app, profile and
//     certificate lists cover only what the organisation manages;
//   - the tenant's policy for the device's class shows diagnostics to
//     admins (the catalogue's usage_logs category): where it hides them,
//     as the default policy does, the notice promises they are seen only
//     after a reason is given, and command errors have no such reveal; where
//     it drops them, as for shared devices, nothing diagnostic is kept.
//
// The domain and code, Apple's fixed names for the error, are always kept.
func keepsErrorText(ctx context.Context, q store.Queries, tenantID, deviceID string) (bool, error) {
	d, err := q.Devices().Get(ctx, tenantID, deviceID)
	if err != nil {
		return false, err
	}
	o := privacy.Ownership(d.Ownership)
	if o.PersonallyOwned() {
		return false, nil
	}
	settings, err := privacy.ViewSettings(ctx, q, tenantID)
	if err != nil {
		return false, err
	}
	return settings.Policy.Mode(o, privacy.UsageLogs) == privacy.Show, nil
}

// boundedErrorChain keeps what an admin needs from a device's error chain:
// per entry the domain, the code and, when described, one description cut
// to length, for at most maxErrorChainItems entries and maxErrorChain
// bytes. The result is always valid JSON and keeps the first entry.
func boundedErrorChain(chain []mdmproto.ErrorChainItem, described bool) ([]byte, error) {
	kept := make([]mdmproto.ErrorChainItem, 0, min(len(chain), maxErrorChainItems))
	for _, e := range chain[:min(len(chain), maxErrorChainItems)] {
		item := mdmproto.ErrorChainItem{ErrorCode: e.ErrorCode, ErrorDomain: deviceErrorDomain(e.ErrorDomain)}
		if described {
			item.LocalizedDescription = truncateText(firstNonEmpty(e.LocalizedDescription, e.USEnglishDescription), maxErrorText)
		}
		kept = append(kept, item)
	}
	for {
		out, err := json.Marshal(kept)
		if err != nil || len(out) <= maxErrorChain || len(kept) <= 1 {
			return out, err
		}
		kept = kept[:len(kept)-1] // escaping can grow text sixfold
	}
}

// deviceErrorDomain is what is kept of the domain a device names its error
// in: Apple's domains are identifiers (MCMDMErrorDomain); anything else,
// none included, is kept as unknownErrorDomain. So every entry a device
// sent names a domain, which tells it from Steward's own entries
// (stripDeviceText, ErrorRecord), and no free text rides in the domain.
func deviceErrorDomain(domain string) string {
	if domain == "" || len(domain) > 128 || strings.IndexFunc(domain, func(r rune) bool {
		return !(r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	}) >= 0 {
		return unknownErrorDomain
	}
	return domain
}

const unknownErrorDomain = "unknown"

// lastSeenGranularity is how stale a device's last-seen time may get before
// an idle check-in with nothing to do writes it.
const lastSeenGranularity = time.Minute

// quietIdle answers an Idle with nothing queued from reads alone: most
// check-ins find an empty queue, and writing the last-seen time every time
// would cost a commit each. It reports whether it answered.
func (s *Service) quietIdle(ctx context.Context, cert *x509.Certificate, res mdmproto.Result) (bool, error) {
	q := s.st.Read()
	p, err := q.AppleChannels().Presence(ctx, Fingerprint(cert))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // perhaps a renewed certificate: the full path moves its channel
	}
	if err != nil {
		return false, err
	}
	if err := s.checkManaged(ctx, q, p.Channel, store.Device{State: p.DeviceState}, res.Enrollment); err != nil {
		return false, err
	}
	return !p.Pending && s.clock().Sub(p.LastSeenAt) <= lastSeenGranularity, nil
}

// ErrorRecord is ErrorSummary for a record that outlives its command (an
// action's, a profile's status): Apple's names for the error (domain and
// code), or Steward's own words, never the device's description. That
// follows the policy on the command alone: stripped when the policy stops
// showing usage logs, or its person is erased, and purged with it.
func ErrorRecord(chain string) string {
	var entries []mdmproto.ErrorChainItem
	if json.Unmarshal([]byte(chain), &entries) == nil && len(entries) > 0 {
		if e := entries[0]; e.ErrorDomain != "" || e.ErrorCode != 0 {
			return fmt.Sprintf("%s error %d", e.ErrorDomain, e.ErrorCode)
		}
	}
	return ErrorSummary(chain)
}

// ErrorSummary turns a command's stored error chain into one readable,
// bounded line for admins: the device's own description when it gave one.
func ErrorSummary(chain string) string {
	var entries []mdmproto.ErrorChainItem
	if json.Unmarshal([]byte(chain), &entries) == nil && len(entries) > 0 {
		e := entries[0]
		msg := strings.TrimSpace(e.LocalizedDescription)
		if msg == "" {
			msg = fmt.Sprintf("%s error %d", e.ErrorDomain, e.ErrorCode)
		}
		if len(msg) > 300 {
			msg = strings.ToValidUTF8(msg[:300], "") + "…"
		}
		return msg
	}
	return "the device reported an error"
}
