package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/store"
)

// Translation is one language of a notice.
type Translation struct {
	Language string `json:"language"`
	Title    string `json:"title"`
	Body     string `json:"body"` // Markdown
}

// NoticeInput publishes a new version of an ownership class's notice.
type NoticeInput struct {
	Ownership    string        `json:"ownership"`
	Translations []Translation `json:"translations"`
}

const maxNoticeBody = 64 << 10

// PublishNotice stores the next version of the class's privacy notice in
// every language given, makes it current, and asks every affected employee
// to consent again.
func (s *Service) PublishNotice(ctx context.Context, tenantID string, in NoticeInput, actor iam.Actor) (int64, error) {
	o := Ownership(in.Ownership)
	if !o.Valid() {
		return 0, apperr.Invalid("unknown ownership class %q (want one of %v)", in.Ownership, Ownerships)
	}
	if len(in.Translations) == 0 {
		return 0, apperr.Invalid("a notice needs at least one translation")
	}
	seen := map[string]bool{}
	for _, tr := range in.Translations {
		switch {
		case !validLanguage(tr.Language):
			return 0, apperr.Invalid("language %q is not a tag like en or de", tr.Language)
		case seen[tr.Language]:
			return 0, apperr.Invalid("language %q is given twice", tr.Language)
		case strings.TrimSpace(tr.Title) == "" || strings.TrimSpace(tr.Body) == "":
			return 0, apperr.Invalid("every translation needs a title and a body")
		case len(tr.Body) > maxNoticeBody || len(tr.Title) > 200:
			return 0, apperr.Invalid("a notice body is limited to %d bytes and a title to 200", maxNoticeBody)
		}
		seen[tr.Language] = true
	}
	var version int64
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		version, err = s.publishTx(ctx, q, tenantID, o, in.Translations, actor, "privacy.notice.publish")
		return err
	})
	return version, err
}

func (s *Service) publishTx(ctx context.Context, q store.Queries, tenantID string, o Ownership, trs []Translation, actor iam.Actor, action string) (int64, error) {
	settings, version, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return 0, err
	}
	next := settings.NoticeVersions[o] + 1
	now := s.clock()
	for _, tr := range trs {
		if err := q.Notices().Create(ctx, store.Notice{ID: store.NewID(), TenantID: tenantID, Ownership: string(o), Version: next,
			Language: tr.Language, Title: tr.Title, Body: tr.Body, CreatedBy: actor.Ref(), PublishedAt: now}); err != nil {
			return 0, err
		}
	}
	settings.NoticeVersions[o] = next
	settings.keepNoticeTerms(o, next)
	if err := SaveSettings(ctx, q, tenantID, settings, version, now); err != nil {
		return 0, conflictRetry(err)
	}
	if pruned, err := pruneNoticePolicies(ctx, q, tenantID, &settings, o); err != nil {
		return 0, err
	} else if pruned > 0 {
		if err := SaveSettings(ctx, q, tenantID, settings, version+1, now); err != nil {
			return 0, conflictRetry(err)
		}
	}
	n, err := s.notifyClass(ctx, q, tenantID, o, "consent_request",
		"Please review the updated privacy notice for your device",
		fmt.Sprintf("Your organisation has published version %d of the privacy notice for %s devices. "+
			"Please open the employee portal, read what changed, and accept it or withdraw.", next, strings.ReplaceAll(string(o), "_", "-")))
	if err != nil {
		return 0, err
	}
	e := actor.Entry(tenantID, action, "notice", fmt.Sprintf("%s/v%d", o, next), audit.OutcomeSuccess)
	e.Details = map[string]any{"ownership": string(o), "version": next, "languages": len(trs), "employees_notified": n}
	return next, audit.Append(ctx, q, e)
}

// conflictRetry turns a lost settings race into a clear 409.
func conflictRetry(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return apperr.Conflict("the privacy settings changed meanwhile; reload and try again")
	}
	return err
}

// CurrentNotice returns the current notice of a class in the language that
// best fits preference (a language tag, or a list as in Accept-Language:
// "de-CH,de;q=0.9,en;q=0.8"), falling back to English and then to any
// language.
func (s *Service) CurrentNotice(ctx context.Context, tenantID string, o Ownership, preference string) (store.Notice, error) {
	n, _, err := s.NoticeTranslations(ctx, tenantID, o, preference)
	return n, err
}

// NoticeTranslations is CurrentNotice with the languages the current
// version is published in, for a page to offer the others.
func (s *Service) NoticeTranslations(ctx context.Context, tenantID string, o Ownership, preference string) (store.Notice, []string, error) {
	q := s.st.Read()
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return store.Notice{}, nil, err
	}
	all, err := q.Notices().List(ctx, tenantID, string(o))
	if err != nil {
		return store.Notice{}, nil, err
	}
	var current []store.Notice
	var languages []string
	for _, n := range all {
		if n.Version == settings.NoticeVersions[o] {
			current = append(current, n)
			languages = append(languages, n.Language)
		}
	}
	if len(current) == 0 {
		return store.Notice{}, nil, apperr.NotFound("notice")
	}
	slices.Sort(languages)
	for _, want := range []string{bestLanguage(preference, languages), "en"} {
		if i := slices.IndexFunc(current, func(n store.Notice) bool { return n.Language == want }); want != "" && i >= 0 {
			return current[i], languages, nil
		}
	}
	return current[0], languages, nil
}

// bestLanguage returns the one of available that best fits preference, a
// tag or an Accept-Language list with its weights; "" when none does.
// Phones send regional tags ("de-DE") where notices are published by
// language ("de"), so an exact match would miss them.
func bestLanguage(preference string, available []string) string {
	wanted, _, err := language.ParseAcceptLanguage(preference)
	if err != nil || len(wanted) == 0 || len(available) == 0 {
		return ""
	}
	tags := make([]language.Tag, len(available))
	for i, a := range available {
		tags[i] = language.Make(a)
	}
	_, i, confidence := language.NewMatcher(tags).Match(wanted...)
	if confidence == language.No {
		return ""
	}
	return available[i]
}

// ShownNotice is a notice as a person reads it before consenting: its text
// and the plain-words summary of the tenant's settings at that moment.
type ShownNotice struct {
	store.Notice
	Summary string
}

// ShownNotice returns the current notice of a class (as CurrentNotice) with
// the summary shown beside it.
func (s *Service) ShownNotice(ctx context.Context, tenantID string, o Ownership, language string) (ShownNotice, error) {
	n, err := s.CurrentNotice(ctx, tenantID, o, language)
	if err != nil {
		return ShownNotice{}, err
	}
	settings, _, err := LoadSettings(ctx, s.st.Read(), tenantID)
	if err != nil {
		return ShownNotice{}, err
	}
	return ShownNotice{Notice: n, Summary: PlainSummary(settings, o)}, nil
}

// TextDigest is the identity of a text shown to a person: the lowercase
// hex SHA-256 of its UTF-8 bytes.
func TextDigest(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// ConsentInput records an acceptance.
type ConsentInput struct {
	DeviceID      string `json:"device_id"`
	Ownership     string `json:"ownership"`
	NoticeVersion int64  `json:"notice_version"`
	Language      string `json:"language"`
	Method        string `json:"method"` // enrolment, portal, admin-recorded
	AllowFullWipe bool   `json:"allow_full_wipe"`
	// SummarySHA256 is the digest of the summary the person read (the
	// enrolment page's, or summary_sha256 of the portal's notice). When
	// given, a summary changed since is refused, so the consent records
	// exactly what was read. Not for admin-recorded consents.
	SummarySHA256 string `json:"summary_sha256,omitempty"`
}

// ErrSummaryChanged refuses a consent to a summary the settings changed
// while the person read it: they are shown the current one first.
var ErrSummaryChanged = apperr.Conflict("what your organisation collects or can do changed while you were reading; please read the summary again")

var consentMethods = []string{"enrolment", "portal", "admin-recorded"}

// RecordConsent stores that a person accepted the current notice version of
// a class. An older version is refused: they must read the current one.
func (s *Service) RecordConsent(ctx context.Context, tenantID, subjectID string, in ConsentInput, actor iam.Actor) (store.Consent, error) {
	var c store.Consent
	err := s.st.Tx(ctx, func(q store.Queries) error {
		var err error
		c, err = s.RecordConsentIn(ctx, q, tenantID, subjectID, in, actor)
		return err
	})
	return c, err
}

// RecordConsentIn is RecordConsent inside the caller's transaction (the
// enrolment records consent together with its own change).
func (s *Service) RecordConsentIn(ctx context.Context, q store.Queries, tenantID, subjectID string, in ConsentInput, actor iam.Actor) (store.Consent, error) {
	o := Ownership(in.Ownership)
	if !o.Valid() {
		return store.Consent{}, apperr.Invalid("unknown ownership class %q", in.Ownership)
	}
	if !slices.Contains(consentMethods, in.Method) {
		return store.Consent{}, apperr.Invalid("method must be one of %v", consentMethods)
	}
	if in.AllowFullWipe && !o.PersonallyOwned() {
		return store.Consent{}, apperr.Invalid("allow_full_wipe is only asked on personal devices")
	}
	// Erasing a personal device is the employee's answer for that device,
	// given on its enrolment page; nobody can give it for them.
	if in.AllowFullWipe && in.Method == "admin-recorded" {
		return store.Consent{}, apperr.Invalid("only the employee can allow a full wipe, on their device's enrolment page; record the consent without allow_full_wipe")
	}
	c := store.Consent{ID: store.NewID(), TenantID: tenantID, SubjectID: subjectID, DeviceID: in.DeviceID, Ownership: string(o),
		NoticeVersion: in.NoticeVersion, Language: in.Language, Method: in.Method, AllowFullWipe: in.AllowFullWipe, AcceptedAt: s.clock()}
	sub, err := s.Subject(ctx, q, tenantID, subjectID)
	if err != nil {
		return c, err
	}
	if sub.State != store.SubjectActive {
		return c, apperr.Conflict("that person was erased")
	}
	if in.DeviceID != "" {
		d, err := s.Device(ctx, q, tenantID, in.DeviceID)
		if err != nil {
			return c, err
		}
		if d.SubjectID != subjectID || d.Ownership != string(o) {
			return c, apperr.Invalid("the device belongs to another person or ownership class")
		}
	}
	// Read shared: a publication pruning the policies of versions nobody
	// stands on waits for this consent (see pruneNoticePolicies).
	settings, err := loadSettingsShared(ctx, q, tenantID, s.clock())
	if err != nil {
		return c, err
	}
	if cur := settings.NoticeVersions[o]; cur == 0 || in.NoticeVersion != cur {
		return c, apperr.Conflict("notice version %d is not the current one (%d): read and accept the current notice", in.NoticeVersion, cur)
	}
	notices, err := q.Notices().List(ctx, tenantID, string(o))
	if err != nil {
		return c, err
	}
	i := slices.IndexFunc(notices, func(n store.Notice) bool { return n.Version == in.NoticeVersion && n.Language == in.Language })
	if i < 0 {
		return c, apperr.Invalid("there is no %q translation of notice version %d", in.Language, in.NoticeVersion)
	}
	c.NoticeSHA256 = TextDigest(notices[i].Body)
	if in.Method == "admin-recorded" {
		// The person read whatever they read elsewhere: say so rather than
		// claim a summary Steward never showed them.
		if in.SummarySHA256 != "" {
			return c, apperr.Invalid("an admin-recorded consent has no summary shown by Steward; leave summary_sha256 out")
		}
		c.Shown = store.ConsentShownOutsideSteward
	} else if in.SummarySHA256 == "" {
		// A client that does not say it showed the summary (one from
		// before the portal served it): only the notice is on record.
		c.Shown = store.ConsentShownNoticeOnly
	} else {
		// The summary follows the settings read (shared) above, which stay
		// as they are until this consent commits.
		c.Shown, c.Summary = store.ConsentShownNoticeAndSummary, PlainSummary(settings, o)
		c.SummarySHA256 = TextDigest(c.Summary)
		if in.SummarySHA256 != c.SummarySHA256 {
			return c, ErrSummaryChanged
		}
	}
	if err := q.Consents().Create(ctx, c); err != nil {
		return c, err
	}
	// Outside the enrolment page (which answers for its own device), a
	// consent without the permission takes it back; one with it, from the
	// portal, only keeps what each enrolment holds.
	if o.PersonallyOwned() && !in.AllowFullWipe && in.Method != "enrolment" {
		for _, h := range s.wipeBack {
			if err := h(ctx, q, tenantID, subjectID, o, in.DeviceID); err != nil {
				return c, err
			}
		}
	}
	e := actor.Entry(tenantID, "privacy.consent.accept", "subject", subjectID, audit.OutcomeSuccess)
	// The digests in the signed audit chain make a later change to the
	// consent row or to the texts it references evident.
	e.Details = map[string]any{"ownership": string(o), "version": in.NoticeVersion, "method": in.Method, "allow_full_wipe": in.AllowFullWipe,
		"consent": c.ID, "shown": c.Shown, "notice_sha256": c.NoticeSHA256, "summary_sha256": c.SummarySHA256}
	return c, audit.Append(ctx, q, e)
}

// ConsentState is a person's consent per ownership class.
type ConsentState struct {
	Consents []store.Consent `json:"consents"`
	// Outdated lists classes whose current notice the person has not accepted.
	Outdated []Ownership `json:"outdated"`
}

// Consents returns a person's consents and which need renewing.
func (s *Service) Consents(ctx context.Context, tenantID, subjectID string) (ConsentState, error) {
	q := s.st.Read()
	if _, err := s.Subject(ctx, q, tenantID, subjectID); err != nil {
		return ConsentState{}, err
	}
	cs, err := q.Consents().ListForSubject(ctx, tenantID, subjectID)
	if err != nil {
		return ConsentState{}, err
	}
	if err := s.withShownTexts(ctx, q, tenantID, cs); err != nil {
		return ConsentState{}, err
	}
	settings, _, err := LoadSettings(ctx, q, tenantID)
	if err != nil {
		return ConsentState{}, err
	}
	devices, err := allDevices(ctx, q, tenantID, store.DeviceFilter{SubjectID: subjectID})
	if err != nil {
		return ConsentState{}, err
	}
	out := ConsentState{Consents: cs, Outdated: []Ownership{}}
	for _, d := range devices {
		o := Ownership(d.Ownership)
		cur := settings.NoticeVersions[o]
		if cur == 0 || slices.Contains(out.Outdated, o) || d.Gone() {
			continue
		}
		if !slices.ContainsFunc(cs, func(c store.Consent) bool {
			return c.Ownership == string(o) && c.NoticeVersion == cur && c.WithdrawnAt.IsZero()
		}) {
			out.Outdated = append(out.Outdated, o)
		}
	}
	return out, nil
}

// withShownTexts fills in each consent's summary from the tenant's kept
// texts. One that is missing or no longer hashes to the digest it was kept
// under is not shown but marked unverified and logged: the person's
// export and consents must not fail for it, nor show a wrong text.
func (s *Service) withShownTexts(ctx context.Context, q store.Queries, tenantID string, cs []store.Consent) error {
	texts := map[string]string{}
	bad := map[string]bool{}
	for i, c := range cs {
		if c.SummarySHA256 == "" {
			continue
		}
		text, ok := texts[c.SummarySHA256]
		if !ok && !bad[c.SummarySHA256] {
			var err error
			text, err = q.Consents().ShownText(ctx, tenantID, c.SummarySHA256)
			switch {
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("privacy: reading the summary consent %s was shown: %w", c.ID, err)
			case err != nil || TextDigest(text) != c.SummarySHA256:
				bad[c.SummarySHA256] = true
				s.log.ErrorContext(ctx, "a consent's kept summary is missing or no longer matches its digest",
					"tenant", tenantID, "consent", c.ID, "summary_sha256", c.SummarySHA256)
			default:
				texts[c.SummarySHA256] = text
			}
		}
		if bad[c.SummarySHA256] {
			cs[i].SummaryUnverified = true
			continue
		}
		cs[i].Summary = text
	}
	return nil
}

// WithdrawConsent withdraws a consent. On a personal device this retires
// it: its personal data is erased at once (with a certificate), and a
// device that can be told to leave (an enrolled Apple device) is sent the
// removal of its management profile and is leaving until it answers or
// checks out; any other device is deprovisioned.
func (s *Service) WithdrawConsent(ctx context.Context, tenantID, subjectID, consentID string, actor iam.Actor) ([]SignedCertificate, error) {
	var certs []SignedCertificate
	err := s.st.Tx(ctx, func(q store.Queries) error {
		certs = nil // a retried transaction starts afresh
		cs, err := q.Consents().ListForSubject(ctx, tenantID, subjectID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(cs, func(c store.Consent) bool { return c.ID == consentID })
		if i < 0 {
			return apperr.NotFound("consent")
		}
		if err := q.Consents().Withdraw(ctx, tenantID, consentID, s.clock()); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return apperr.Conflict("this consent was already withdrawn")
			}
			return err
		}
		c := cs[i]
		var retire []store.Device
		if Ownership(c.Ownership).PersonallyOwned() {
			devices, err := allDevices(ctx, q, tenantID, store.DeviceFilter{SubjectID: subjectID})
			if err != nil {
				return err
			}
			for _, d := range devices {
				if d.Ownership == c.Ownership && !d.Gone() && (c.DeviceID == "" || c.DeviceID == d.ID) {
					retire = append(retire, d)
				}
			}
		}
		// Retiring starts in the same transaction: a withdrawal never
		// stands without its devices' personal data gone.
		states := map[string]int{}
		for _, d := range retire {
			cert, err := s.deprovisionTx(ctx, q, tenantID, d.ID, "the employee withdrew consent for this personal device", actor, "", store.DeviceLeaving)
			if err != nil {
				return err
			}
			certs = append(certs, cert)
			if d, err = q.Devices().Get(ctx, tenantID, d.ID); err != nil {
				return err
			}
			states[d.State]++
		}
		e := actor.Entry(tenantID, "privacy.consent.withdraw", "subject", subjectID, audit.OutcomeSuccess)
		e.Details = map[string]any{"consent": consentID, "ownership": c.Ownership, "devices_erased": len(retire),
			"devices_told_to_remove_management": states[store.DeviceLeaving], "devices_deprovisioned": states[store.DeviceDeprovisioned]}
		return audit.Append(ctx, q, e)
	})
	return certs, err
}

// notifyClass queues a notification to every active person with a live
// device of class o, and returns how many.
func (s *Service) notifyClass(ctx context.Context, q store.Queries, tenantID string, o Ownership, kind, title, body string) (int, error) {
	devices, err := allDevices(ctx, q, tenantID, store.DeviceFilter{})
	if err != nil {
		return 0, err
	}
	done := map[string]bool{}
	for _, d := range devices {
		if d.Ownership != string(o) || d.SubjectID == "" || done[d.SubjectID] || d.Gone() {
			continue
		}
		done[d.SubjectID] = true
		if err := s.queueNotification(ctx, q, store.Notification{TenantID: tenantID, SubjectID: d.SubjectID, Kind: kind, Title: title, Body: body}); err != nil {
			return 0, err
		}
	}
	return len(done), nil
}

// QueueKeyMail queues a mail whose key the outbox mints as it leaves (the
// KeyMinter of n.Kind, in place of KeyPlaceholder in n.Body), in the
// caller's transaction.
func (s *Service) QueueKeyMail(ctx context.Context, q store.Queries, n store.Notification) error {
	if s.minters[n.Kind] == nil || !strings.Contains(n.Body, KeyPlaceholder) {
		return fmt.Errorf("privacy: a %q mail has no key to mint", n.Kind)
	}
	if !s.mailOn.Load() {
		return apperr.Conflict("this server sends no e-mail (its SMTP settings, --smtp-host, are not set), so nothing can be mailed to the person")
	}
	return s.queueNotification(ctx, q, n)
}

// queueNotification puts n (tenant, person, kind, title, body and ref) in
// the mail outbox inside q's transaction, due now.
func (s *Service) queueNotification(ctx context.Context, q store.Queries, n store.Notification) error {
	now := s.clock()
	n.ID, n.State, n.Attempts, n.LastError, n.CreatedAt, n.NextAttemptAt, n.SentAt = store.NewID(), "queued", 0, "", now, now, time.Time{}
	return q.Notifications().Create(ctx, n)
}

// Approval lifetime for two-person changes.
const approvalTTL = 72 * time.Hour
