package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/steward-mdm/steward/internal/actions"
	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/rbac"
	"github.com/steward-mdm/steward/internal/store"
)

const tagApple = "Apple MDM"

func (s *Server) appleRoutes() []Route {
	const t = "/api/v1/tenants/{tenant}"
	return []Route{
		{Method: "POST", Path: t + "/enrolments", Access: needs("device.manage"), Tag: tagApple, Summary: "Create an enrolment link for one device (it may try again after a failed installation). With notify, the link is mailed to the person (subject_id), minted as the mail leaves, and not returned: only such a link asks the person of a personal device whether a full wipe is allowed, as nobody else could have answered through it", In: EnrolmentRequest{}, Out: NewEnrolmentView{}, Status: http.StatusCreated, Handle: s.createEnrolment},
		{Method: "GET", Path: t + "/enrolments", Access: needs("device.read"), Tag: tagApple, Summary: "List enrolments", Query: pageQuery, Out: List[EnrolmentView]{}, Handle: s.listEnrolments},
		{Method: "DELETE", Path: t + "/enrolments/{enrolment}", Access: needs("device.manage"), Tag: tagApple, Summary: "Revoke an enrolment link no device finished enrolling with (open, accepted, or its installation failed: that pending device is deprovisioned); the link is refused from then on. One a device enrolled with is refused (retire the device); revoking again returns it unchanged", Out: EnrolmentView{}, Handle: s.revokeEnrolment},
		{Method: "PUT", Path: t + "/apple/push-certificate", Access: needs("settings.manage"), Tag: tagApple, Summary: "Upload the APNs push certificate (PEM or PKCS#12, base64)", In: PushCertificateRequest{}, Out: PushCertificateView{}, Handle: s.setPushCertificate},
		{Method: "GET", Path: t + "/apple/push-certificate", Access: needs("device.read"), Tag: tagApple, Summary: "The push certificate's topic, expiry and APNs' standing refusal of it, if any", Out: PushCertificateView{}, Handle: s.getPushCertificate},
		{Method: "POST", Path: t + "/devices/{device}/commands", Access: needs("device.read"), Tag: tagApple, Summary: "Queue an MDM command; one that a remote action also sends (lock, lost mode, locate, restart, shut down, OS update) needs that action's permission, a reason and its checks", In: CommandRequest{}, Out: CommandView{}, Status: http.StatusCreated, Handle: s.enqueueCommand},
		{Method: "POST", Path: t + "/commands", Access: needs("device.read"), Tag: tagApple, Summary: "Queue one inventory query for many devices (or all enrolled ones); devices whose queue is full (skipped) or that cannot take it (ineligible, with why) are left out; if every device is ineligible, the request fails", In: BulkCommandRequest{}, MaxBody: MaxBulkCommandBodyBytes, Out: BulkCommandView{}, Status: http.StatusCreated, Handle: s.enqueueBulk},
		{Method: "GET", Path: t + "/devices/{device}/commands", Access: needs("device.read"), Tag: tagApple, Summary: "A device's commands and their status", Query: pageQuery, Out: List[CommandView]{}, Handle: s.listCommands},
		{Method: "GET", Path: t + "/devices/{device}/user-channels", Access: needs("device.read"), Tag: tagApple, Summary: "A Mac's user channels (one per user who logged in)", Out: List[UserChannelView]{}, Handle: s.listUserChannels},
		{Method: "POST", Path: t + "/devices/{device}/user-channels/lookup", Access: needs("privacy.reveal"), Tag: tagApple, Summary: "Whether an account name used the device: its user channel, or none. A question about a person, so it needs privacy.reveal, as a reveal does, and a reason; audited, and in the access record of the person the account names. In the body, so that neither the name nor the reason reaches a proxy's log", In: UserChannelLookupRequest{}, Out: List[UserChannelView]{}, Handle: s.lookupUserChannel},
		{Method: "POST", Path: t + "/devices/{device}/user-channels/{channel}/close", Access: needs("device.manage"), Tag: tagApple, Summary: "Close a user channel for good (a user who left): its token goes and its open commands are cancelled", In: CancelCommandRequest{}, Out: UserChannelView{}, Handle: s.closeUserChannel},
		{Method: "POST", Path: t + "/devices/{device}/commands/{command}/cancel", Access: needs("device.read"), Tag: tagApple, Summary: "Cancel a command not yet delivered (queued, or answered \"not now\"); the permission its sending needs", In: CancelCommandRequest{}, Out: CommandView{}, Handle: s.cancelCommand},
	}
}

type EnrolmentRequest = mdm.EnrolmentInput

type EnrolmentView struct {
	ID             string `json:"id"`
	Ownership      string `json:"ownership"`
	SubjectID      string `json:"subject_id,omitempty"`
	NoticeVersion  int64  `json:"notice_version"`
	UserEnrollment bool   `json:"user_enrollment"`
	// LinkMailed: the link went to the person by mail, and no admin saw it.
	LinkMailed bool       `json:"link_mailed"`
	State      string     `json:"state"`
	DeviceID   string     `json:"device_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
}

func enrolmentView(e store.Enrolment) EnrolmentView {
	return EnrolmentView{ID: e.ID, Ownership: e.Ownership, SubjectID: e.SubjectID, NoticeVersion: e.NoticeVersion, UserEnrollment: e.UserEnrollment,
		LinkMailed: e.LinkMailed, State: e.State, DeviceID: e.DeviceID, CreatedAt: e.CreatedAt, ExpiresAt: e.ExpiresAt, UsedAt: optTime(e.UsedAt)}
}

type NewEnrolmentView struct {
	Enrolment EnrolmentView `json:"enrolment"`
	// Link is shown once: the employee opens it on the device. Absent when
	// it was mailed to them (notify).
	Link string `json:"link,omitempty"`
}

type PushCertificateRequest struct {
	Certificate string `json:"certificate"`        // base64 of the PEM or PKCS#12 file
	Password    string `json:"password,omitempty"` // PKCS#12 only
	// ReplaceTopic allows a certificate whose topic is not the one of every
	// enrolled device; the devices on other topics stop receiving pushes and
	// must enrol again.
	ReplaceTopic bool `json:"replace_topic,omitempty"`
}

type PushCertificateView struct {
	Topic    string    `json:"topic"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	Warning  bool      `json:"expiry_warning"`
	Expired  bool      `json:"expired"`
	// Health is the worst of: expired, refused (APNs refuses the
	// certificate or its topic: no device is woken until another is
	// uploaded), expiring (within 30 days) and ok.
	Health string `json:"health"`
	// Refused: APNs refuses the certificate; LastError says how, and
	// FailingSince since when. Both go with the next accepted push or upload.
	Refused      bool                  `json:"refused"`
	LastError    *PushCertificateError `json:"last_error,omitempty"`
	FailingSince *time.Time            `json:"failing_since,omitempty"`
}

// PushCertificateError is APNs' latest refusal of the certificate.
type PushCertificateError struct {
	// Status is APNs' HTTP status, e.g. 403; absent when APNs refused the
	// certificate in the TLS handshake (reason TLSCertificateRefused).
	Status int       `json:"status,omitempty"`
	Reason string    `json:"reason"` // APNs reason, e.g. BadCertificate
	APNsID string    `json:"apns_id,omitempty"`
	At     time.Time `json:"at"`
}

func pushCertificateView(st apns.CertStatus) PushCertificateView {
	v := PushCertificateView{Topic: st.Topic, NotAfter: st.NotAfter, DaysLeft: st.DaysLeft, Warning: st.Warning, Expired: st.DaysLeft < 0,
		Health: st.Health()}
	if r := st.Refused; r != nil {
		since := r.Since
		v.Refused, v.FailingSince = true, &since
		v.LastError = &PushCertificateError{Status: r.Status, Reason: r.Reason, APNsID: r.ID, At: r.At}
	}
	return v
}

type CommandRequest struct {
	RequestType string `json:"request_type"`
	// UserChannel sends the command on one of the device's user channels
	// (InstallProfile, RemoveProfile, ProfileList) instead of the device's.
	UserChannel string `json:"user_channel,omitempty"`
	// Reason is audited; commandReason says when it is required.
	Reason      string   `json:"reason,omitempty"`
	Message     string   `json:"message,omitempty"`
	PhoneNumber string   `json:"phone_number,omitempty"`
	PIN         string   `json:"pin,omitempty"`
	Identifier  string   `json:"identifier,omitempty"`
	Queries     []string `json:"queries,omitempty"`
	// Payload is a configuration profile (base64) for InstallProfile.
	Payload string `json:"payload,omitempty"`
	// ITunesStoreID or ManifestURL (or Identifier) name the app for
	// InstallApplication; on a personally owned device, an app the catalogue
	// approves.
	ITunesStoreID int64  `json:"itunes_store_id,omitempty"`
	ManifestURL   string `json:"manifest_url,omitempty"`
	// PurchaseMethod licenses an App Store app: 0 free (the default), 1 an
	// Apps and Books (VPP) assignment. User-enrolled devices and Macs always get 1.
	PurchaseMethod *int `json:"purchase_method,omitempty"`
	// ProductVersion and InstallAction schedule an OS update.
	ProductVersion string `json:"product_version,omitempty"`
	InstallAction  string `json:"install_action,omitempty"`
}

type BulkCommandRequest struct {
	CommandRequest
	DeviceIDs []string `json:"device_ids,omitempty"`
	// AllEnrolled targets every enrolled device of the tenant.
	AllEnrolled bool `json:"all_enrolled,omitempty"`
}

type BulkCommandView struct {
	Queued int `json:"queued"`
	// Skipped are devices whose queue was full: send again once they have
	// checked in.
	Skipped []string `json:"skipped,omitempty"`
	// Ineligible are devices that cannot take this command (not enrolled,
	// their ownership, the collection policy…), each with why; nothing was
	// queued for them. A request whose every device is ineligible fails
	// instead, as it would for one device (full queues alone do not).
	Ineligible []SkippedDeviceView `json:"ineligible,omitempty"`
}

// SkippedDeviceView is a device a bulk command left out.
type SkippedDeviceView struct {
	DeviceID string           `json:"device_id"`
	Reason   IneligibleReason `json:"reason"`
	// Message says it for a person.
	Message string `json:"message"`
}

// IneligibleReason is a stable code for why a device cannot take a
// command (mdm.IneligibleReasons).
type IneligibleReason string

func (IneligibleReason) EnumValues() []string { return mdm.IneligibleReasons() }

func bulkCommandView(cmds []store.Command, skipped []mdm.Skip) BulkCommandView {
	v := BulkCommandView{Queued: len(cmds)}
	for _, sk := range skipped {
		if sk.Reason == mdm.SkipQueueFull {
			v.Skipped = append(v.Skipped, sk.DeviceID)
		} else {
			v.Ineligible = append(v.Ineligible, SkippedDeviceView{DeviceID: sk.DeviceID, Reason: IneligibleReason(sk.Reason), Message: sk.Message})
		}
	}
	return v
}

type CancelCommandRequest struct {
	// Reason is audited; stopping an action's command (a lock, a wipe, lost
	// mode…) or a passcode clear needs one, as sending it did.
	Reason string `json:"reason,omitempty"`
}

type CommandView struct {
	ID          string     `json:"id"`
	UserChannel string     `json:"user_channel,omitempty"`
	RequestType string     `json:"request_type"`
	State       string     `json:"state"`
	RequestedBy string     `json:"requested_by"`
	Reason      string     `json:"reason,omitempty"`
	ErrorChain  string     `json:"error_chain,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

func commandView(c store.Command) CommandView {
	return CommandView{ID: c.ID, UserChannel: c.UserChannel, RequestType: c.RequestType, State: c.State, RequestedBy: c.RequestedBy, Reason: c.Reason, ErrorChain: c.ErrorChain,
		CreatedAt: c.CreatedAt, SentAt: optTime(c.SentAt), CompletedAt: optTime(c.CompletedAt)}
}

func (s *Server) mdmSvc() (*mdm.Service, error) {
	if s.opts.MDM == nil {
		return nil, apperr.New(apperr.KindUnavailable, "Apple MDM is not configured")
	}
	return s.opts.MDM, nil
}

func (s *Server) createEnrolment(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in EnrolmentRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	if err := device.ValidateEnrolmentGroup(c.R.Context(), s.st.Read(), c.Tenant, in.GroupID); err != nil {
		return nil, err
	}
	e, link, err := m.CreateEnrolment(c.R.Context(), c.Tenant, in, c.Actor)
	if err != nil {
		return nil, err
	}
	c.W.Header().Set("Cache-Control", "no-store")
	return NewEnrolmentView{Enrolment: enrolmentView(e), Link: link}, nil
}

func (s *Server) listEnrolments(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	es, err := s.st.Read().Enrolments().List(c.R.Context(), c.Tenant, page)
	if err != nil {
		return nil, err
	}
	return listOf(es, page.Limit, enrolmentView, func(e store.Enrolment) string { return e.ID }), nil
}

func (s *Server) revokeEnrolment(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	e, err := m.RevokeEnrolment(c.R.Context(), c.Tenant, c.Path("enrolment"), c.Actor)
	if err != nil {
		return nil, err
	}
	return enrolmentView(e), nil
}

func (s *Server) setPushCertificate(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in PushCertificateRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(in.Certificate)
	if err != nil {
		return nil, apperr.Invalid("certificate must be base64").With("field", "certificate")
	}
	st, err := m.SetPushCertificate(c.R.Context(), c.Tenant, data, in.Password, in.ReplaceTopic, c.Actor)
	if err != nil {
		return nil, err
	}
	return pushCertificateView(st), nil
}

func (s *Server) getPushCertificate(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	st, err := m.PushCertificateStatus(c.R.Context(), c.Tenant)
	if err != nil {
		return nil, err
	}
	return pushCertificateView(st), nil
}

// commandFor turns a request into a typed command and the permission it
// needs (commandPermission).
func commandFor(in CommandRequest) (mdmproto.Request, rbac.Permission, error) {
	req, err := requestFor(in)
	return req, commandPermission(in.RequestType), err
}

// commandActions are the request types a remote action also sends (shut
// down does what restart does). Sent directly they follow the action's
// rules: its permission, a reason, its options' checks.
var commandActions = map[string]actions.Kind{
	"DeviceLock": actions.Lock, "EraseDevice": actions.Wipe, "EnableLostMode": actions.LostMode, "DisableLostMode": actions.EndLostMode,
	"DeviceLocation": actions.Locate, "RestartDevice": actions.Restart, "ShutDownDevice": actions.Restart, "ScheduleOSUpdate": actions.OSUpdate,
}

// commandPermission is the permission sending a command of requestType
// needs, and cancelling one: stopping a lock can be as harmful as sending it.
func commandPermission(requestType string) rbac.Permission {
	if k, ok := commandActions[requestType]; ok {
		p, _ := actions.Permission(k)
		return p
	}
	if requestType == "ClearPasscode" {
		return "device.lock" // it opens the device, as unlocking would
	}
	return "device.manage"
}

// commandReason checks a command's reason as remote actions check theirs
// (privacy.ValidateReason): required for what an action also sends and for
// clearing a passcode; optional otherwise, but held to the same rule when
// given, since it is audited.
func commandReason(in CommandRequest) (string, error) {
	return checkedReason(in.Reason, reasonRequired(in.RequestType))
}

// reasonRequired says whether sending, or stopping, a command of
// requestType must say why: an action's, or clearing a passcode.
func reasonRequired(requestType string) bool {
	_, isAction := commandActions[requestType]
	return isAction || requestType == "ClearPasscode"
}

// checkedReason validates reason as every audited reason is; a blank one
// passes unless required.
func checkedReason(reason string, required bool) (string, error) {
	if !required && strings.TrimSpace(reason) == "" {
		return "", nil
	}
	checked, err := privacy.ValidateReason(reason)
	if err != nil {
		return "", apperr.As(err).With("field", "reason")
	}
	return checked, nil
}

// requestFor builds the typed command a request names, checking its input
// as the action that also sends it, or the profile library, would.
func requestFor(in CommandRequest) (mdmproto.Request, error) {
	if k, ok := commandActions[in.RequestType]; ok {
		o := actions.Options{Message: in.Message, PhoneNumber: in.PhoneNumber, PIN: in.PIN, ProductVersion: in.ProductVersion}
		if err := o.Validate(k); err != nil {
			return nil, err
		}
	}
	switch in.RequestType {
	case "DeviceInformation":
		return mdmproto.DeviceInformation{Queries: in.Queries}, nil
	case "SecurityInfo":
		return mdmproto.SecurityInfo{}, nil
	case "InstalledApplicationList":
		return mdmproto.InstalledApplicationList{}, nil
	case "ManagedApplicationList":
		return mdmproto.ManagedApplicationList{}, nil
	case "ProfileList":
		return mdmproto.ProfileList{}, nil
	case "CertificateList":
		return mdmproto.CertificateList{}, nil
	case "RemoveProfile":
		if payloads.Reserved(in.Identifier, mdmproto.EnrolmentIdentifierRoot) {
			return nil, apperr.Invalid("removing the management profile retires the device: use the retire action, which a second admin approves").With("field", "identifier")
		}
		return mdmproto.RemoveProfile{Identifier: in.Identifier}, nil
	case "RemoveApplication":
		return mdmproto.RemoveApplication{Identifier: in.Identifier}, nil
	case "RestartDevice":
		// As the restart action: a Mac's user is asked to restart, not
		// thrown out of their session with their work unsaved.
		return mdmproto.RestartDevice{NotifyUser: true}, nil
	case "ShutDownDevice":
		return mdmproto.ShutDownDevice{}, nil
	case "DeviceLock":
		return mdmproto.DeviceLock{Message: in.Message, PhoneNumber: in.PhoneNumber, PIN: mdmproto.SecretString(in.PIN)}, nil
	case "DeviceLocation":
		return mdmproto.DeviceLocation{}, nil
	case "EnableLostMode":
		return mdmproto.EnableLostMode{Message: in.Message, PhoneNumber: in.PhoneNumber}, nil
	case "DisableLostMode":
		return mdmproto.DisableLostMode{}, nil
	case "EraseDevice":
		// Wiping goes through remote actions, where a second admin approves it.
		return nil, apperr.Invalid("wipe a device with POST /devices/{device}/actions (action wipe): a second admin approves it").With("field", "request_type")
	case "ClearPasscode":
		return mdmproto.ClearPasscode{}, nil // the service adds the device's UnlockToken
	case "InstallProfile":
		payload, err := base64.StdEncoding.DecodeString(in.Payload)
		if err != nil || len(payload) == 0 {
			return nil, apperr.Invalid("payload must be a base64 configuration profile").With("field", "payload")
		}
		// The checks of the profile library: a well-formed profile, no MDM
		// payload, and no identifier that could replace the enrolment.
		if _, err := payloads.ValidateCustom(payload, mdmproto.EnrolmentIdentifierRoot); err != nil {
			return nil, apperr.As(err).With("field", "payload")
		}
		return mdmproto.InstallProfile{Payload: payload}, nil
	case "InstallApplication":
		method, err := purchaseMethod(in)
		if err != nil {
			return nil, err
		}
		return mdmproto.InstallApplication{ITunesStoreID: in.ITunesStoreID, Identifier: in.Identifier, ManifestURL: in.ManifestURL,
			ManagementFlags: mdmproto.ManagementFlagRemoveWithMDM, PurchaseMethod: method}, nil
	case "ScheduleOSUpdate":
		if in.ProductVersion == "" {
			if in.InstallAction != "" {
				return nil, apperr.Invalid("install_action needs the product_version it applies to").With("field", "product_version")
			}
			return mdmproto.ScheduleOSUpdate{}, nil // the device applies its updates as it would anyway
		}
		return mdmproto.ScheduleOSUpdate{Updates: []mdmproto.OSUpdate{{ProductVersion: in.ProductVersion, InstallAction: in.InstallAction}}}, nil
	}
	return nil, apperr.Invalid("unknown or unsupported request_type %q", in.RequestType).With("field", "request_type")
}

// purchaseMethod is an InstallApplication's purchase_method, 0 when absent.
func purchaseMethod(in CommandRequest) (mdmproto.PurchaseMethod, error) {
	if in.PurchaseMethod == nil {
		return mdmproto.PurchaseFree, nil
	}
	m := mdmproto.PurchaseMethod(*in.PurchaseMethod)
	if m != mdmproto.PurchaseFree && m != mdmproto.PurchaseVPP {
		return 0, apperr.Invalid("purchase_method must be 0 (free) or 1 (Apps and Books)").With("field", "purchase_method")
	}
	if m == mdmproto.PurchaseVPP && in.ManifestURL != "" {
		return 0, apperr.Invalid("purchase_method 1 is for App Store apps, not an app from a manifest_url").With("field", "purchase_method")
	}
	return m, nil
}

func (s *Server) enqueueCommand(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in CommandRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	req, perm, err := commandFor(in)
	if err != nil {
		return nil, err
	}
	if !c.Perms.Has(perm) {
		return nil, apperr.Forbidden("%s needs the %s permission", in.RequestType, perm)
	}
	reason, err := commandReason(in)
	if err != nil {
		return nil, err
	}
	if in.UserChannel != "" {
		cmd, err := m.EnqueueForUser(c.R.Context(), c.Tenant, c.Path("device"), in.UserChannel, req, reason, c.Actor)
		if err != nil {
			return nil, err
		}
		return commandView(cmd), nil
	}
	cmds, err := m.Enqueue(c.R.Context(), c.Tenant, []string{c.Path("device")}, req, reason, c.Actor)
	if err != nil {
		return nil, err
	}
	return commandView(cmds[0]), nil
}

type UserChannelView struct {
	ID          string     `json:"id"`
	Open        bool       `json:"open"`
	Pushable    bool       `json:"pushable"`
	LastCheckin *time.Time `json:"last_checkin,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// UserChannelLookupRequest asks whether Account (a Mac's short name, an
// e-mail address, a Managed Apple Account) used the device, and why.
type UserChannelLookupRequest struct {
	Account string `json:"account"`
	// Reason is required (10 to 500 characters): audited, and in the access
	// record of the person the account names.
	Reason string `json:"reason"`
}

func (s *Server) listUserChannels(c *Call) (any, error) {
	if c.Query("account") != "" {
		// A query string ends up in proxies' logs: an account is asked
		// about in a body.
		return nil, apperr.Invalid("to find an account's channel, POST its name and your reason to …/user-channels/lookup").With("field", "account")
	}
	return s.userChannels(c)
}

func (s *Server) lookupUserChannel(c *Call) (any, error) {
	var in UserChannelLookupRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	ucs, err := m.LookupUserChannel(c.R.Context(), c.Tenant, c.Path("device"), in.Account, in.Reason, c.Actor)
	if err != nil {
		return nil, err
	}
	return userChannelList(ucs), nil
}

func (s *Server) userChannels(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	ucs, err := m.UserChannels(c.R.Context(), c.Tenant, c.Path("device"))
	if err != nil {
		return nil, err
	}
	return userChannelList(ucs), nil
}

func userChannelList(ucs []store.AppleUserChannel) List[UserChannelView] {
	out := make([]UserChannelView, len(ucs))
	for i, uc := range ucs {
		out[i] = userChannelView(uc)
	}
	return List[UserChannelView]{Items: out}
}

func userChannelView(uc store.AppleUserChannel) UserChannelView {
	return UserChannelView{ID: uc.ID, Open: !uc.CheckedOut, Pushable: uc.PushToken != nil, LastCheckin: optTime(uc.LastCheckin),
		CreatedAt: uc.CreatedAt, UpdatedAt: uc.UpdatedAt}
}

func (s *Server) closeUserChannel(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in CancelCommandRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	reason, err := checkedReason(in.Reason, false)
	if err != nil {
		return nil, err
	}
	uc, err := m.CloseUserChannel(c.R.Context(), c.Tenant, c.Path("device"), c.Path("channel"), reason, c.Actor)
	if err != nil {
		return nil, err
	}
	return userChannelView(uc), nil
}

// bulkQueries are the commands POST /commands sends to many devices.
var bulkQueries = []string{"DeviceInformation", "SecurityInfo", "InstalledApplicationList", "ManagedApplicationList", "ProfileList", "CertificateList"}

// MaxBulkDevices bounds one bulk request; larger fleets go in several.
const MaxBulkDevices = 50000

func (s *Server) enqueueBulk(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in BulkCommandRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	req, perm, err := commandFor(in.CommandRequest)
	if err != nil {
		return nil, err
	}
	if !c.Perms.Has(perm) {
		return nil, apperr.Forbidden("%s needs the %s permission", in.RequestType, perm)
	}
	if in.UserChannel != "" {
		return nil, apperr.Invalid("user_channel names one device's channel: send the command to that device")
	}
	// Only inventory queries go out in bulk this way; anything that changes
	// devices is a remote action (POST /actions), under the two-person rule.
	if !slices.Contains(bulkQueries, in.RequestType) {
		return nil, apperr.Forbidden("%s is not sent in bulk here: use POST /actions, which applies the two-person rule", in.RequestType)
	}
	reason, err := commandReason(in.CommandRequest)
	if err != nil {
		return nil, err
	}
	var cmds []store.Command
	var skipped []mdm.Skip
	switch {
	case in.AllEnrolled && len(in.DeviceIDs) > 0:
		return nil, apperr.Invalid("give device_ids or all_enrolled, not both")
	case in.AllEnrolled:
		cmds, skipped, err = m.EnqueueAllEnrolled(c.R.Context(), c.Tenant, MaxBulkDevices, req, reason, c.Actor)
	case len(in.DeviceIDs) > MaxBulkDevices:
		return nil, apperr.Invalid("at most %d devices per request", MaxBulkDevices)
	default:
		cmds, skipped, err = m.EnqueueBulk(c.R.Context(), c.Tenant, in.DeviceIDs, req, reason, c.Actor)
	}
	if err != nil {
		return nil, err
	}
	return bulkCommandView(cmds, skipped), nil
}

func (s *Server) listCommands(c *Call) (any, error) {
	page, err := c.page()
	if err != nil {
		return nil, err
	}
	d, err := s.st.Read().Devices().Get(c.R.Context(), c.Tenant, c.Path("device"))
	if err != nil {
		return nil, err
	}
	return s.commandsOf(c, d, page)
}

// commandsOf lists a page of device d's commands as admins see them.
func (s *Server) commandsOf(c *Call, d store.Device, page store.Page) (any, error) {
	q := s.st.Read()
	cs, err := q.Commands().List(c.R.Context(), d.TenantID, d.ID, page)
	if err == nil {
		err = mdm.HideUserChannelUsage(c.R.Context(), q, d, cs)
	}
	if err != nil {
		return nil, err
	}
	return listOf(cs, page.Limit, commandView, func(x store.Command) string { return x.ID }), nil
}

func (s *Server) cancelCommand(c *Call) (any, error) {
	m, err := s.mdmSvc()
	if err != nil {
		return nil, err
	}
	var in CancelCommandRequest
	if err := c.Decode(&in); err != nil {
		return nil, err
	}
	cmd, err := s.st.Read().Commands().Get(c.R.Context(), c.Tenant, c.Path("command"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && cmd.DeviceID != c.Path("device")) {
		return nil, apperr.NotFound("command")
	}
	if err != nil {
		return nil, err
	}
	perm, required := commandPermission(cmd.RequestType), reasonRequired(cmd.RequestType)
	// An action's command is authorised by the action (a retire is a
	// RemoveProfile that needed device.wipe and a second admin): stopping
	// it needs the action's permission, and a reason as sending it did.
	if a, err := s.st.Read().Actions().ByCommand(c.R.Context(), c.Tenant, cmd.ID); err == nil {
		if p, ok := actions.Permission(actions.Kind(a.Action)); ok {
			perm, required = p, true
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if !c.Perms.Has(perm) {
		return nil, apperr.Forbidden("cancelling %s needs the %s permission", cmd.RequestType, perm)
	}
	reason, err := checkedReason(in.Reason, required)
	if err != nil {
		return nil, err
	}
	cancelled, err := m.Cancel(c.R.Context(), c.Tenant, c.Path("device"), cmd.ID, reason, c.Actor)
	if err != nil {
		return nil, err
	}
	// Cancelled and audited already: a failure to read the policy now
	// shows the times by the day rather than failing the answer.
	shown := []store.Command{cancelled}
	d, err := s.st.Read().Devices().Get(c.R.Context(), c.Tenant, cancelled.DeviceID)
	if err == nil {
		err = mdm.HideUserChannelUsage(c.R.Context(), s.st.Read(), d, shown)
	}
	if err != nil {
		mdm.UserChannelTimesByDay(shown)
	}
	return commandView(shown[0]), nil
}
