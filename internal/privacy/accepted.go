package privacy

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// EffectivePolicy returns the policy d's data is collected and shown under
// (EffectiveTerms). The result is shared and must not be modified.
func EffectivePolicy(ctx context.Context, q store.Queries, settings Settings, d store.Device) (Policy, error) {
	t, err := EffectiveTerms(ctx, q, settings, d)
	return t.Policy, err
}

// Terms is what d's data is collected under: the policy that decides what
// is collected and shown, and how long each category's values are kept.
type Terms struct {
	Policy   Policy
	settings Settings
	// accepted is, per category, the longest period d's owner accepted;
	// nil when the device has no owner's consent to wait for.
	accepted map[Category]time.Duration
}

// Retention is how long a value of c collected now is kept (zero: while
// the device is managed).
func (t Terms) Retention(c Category) time.Duration {
	r := t.settings.Retention(c)
	if t.accepted != nil {
		r = shorterRetention(r, t.accepted[c])
	}
	return r
}

// currentTerms is the settings' own policy and retention, for a device
// without consent to wait for.
func currentTerms(settings Settings) Terms { return Terms{Policy: settings.Policy, settings: settings} }

// EffectiveTerms returns what d's data is collected under. On a
// personally owned device that is, per category, the stricter of the
// current policy and the one its owner accepted, and the shorter of the
// current retention and the one that notice gave (acceptedTerms): a
// widening or a longer period waits for them to accept the notice it
// published, a narrowing or a shorter period applies at once. The
// full-wipe permission stays the current policy's; the employee answers
// it separately, on the enrolment page. Corporate and shared devices have
// no consent to wait for: they get the settings' own, without a read.
// The policy is shared and must not be modified.
func EffectiveTerms(ctx context.Context, q store.Queries, settings Settings, d store.Device) (Terms, error) {
	o := Ownership(d.Ownership)
	if !o.PersonallyOwned() {
		return currentTerms(settings), nil
	}
	version, err := acceptedVersion(ctx, q, d)
	if err != nil {
		return Terms{}, err
	}
	accepted, retention := settings.acceptedTerms(o, version)
	current := settings.Policy[o]
	out := maps.Clone(settings.Policy)
	out[o] = ClassPolicy{Modes: stricterModes(current, accepted), FullWipe: current.FullWipe}
	return Terms{Policy: out, settings: settings, accepted: retention}, nil
}

// acceptedVersion is the notice version of d's class that its owner last
// accepted, for the whole class or for d itself, and has not withdrawn; 0
// when there is none.
func acceptedVersion(ctx context.Context, q store.Queries, d store.Device) (int64, error) {
	if d.SubjectID == "" {
		return 0, nil
	}
	cs, err := q.Consents().ListForSubject(ctx, d.TenantID, d.SubjectID)
	if err != nil {
		return 0, err
	}
	var version int64
	for _, c := range cs {
		if c.Ownership == d.Ownership && c.WithdrawnAt.IsZero() && (c.DeviceID == "" || c.DeviceID == d.ID) {
			version = max(version, c.NoticeVersion)
		}
	}
	return version, nil
}

// keepNoticePolicy records class o's current policy as the one notice
// version v is accepted under, without a retention (see decodeSettings).
// Only personally owned classes ask for consent, so only theirs are kept.
func (s *Settings) keepNoticePolicy(o Ownership, v int64) {
	if !o.PersonallyOwned() {
		return
	}
	if s.NoticePolicies == nil {
		s.NoticePolicies = map[Ownership]map[int64]NoticeTerms{}
	}
	if s.NoticePolicies[o] == nil {
		s.NoticePolicies[o] = map[int64]NoticeTerms{}
	}
	cp := s.Policy[o]
	s.NoticePolicies[o][v] = NoticeTerms{ClassPolicy: ClassPolicy{Modes: maps.Clone(cp.Modes), FullWipe: cp.FullWipe}}
}

// keepNoticeTerms records class o's current policy and every category's
// current retention as what notice version v is accepted under.
func (s *Settings) keepNoticeTerms(o Ownership, v int64) {
	if !o.PersonallyOwned() {
		return
	}
	s.keepNoticePolicy(o, v)
	t := s.NoticePolicies[o][v]
	t.RetentionDays = retentionDays(*s)
	s.NoticePolicies[o][v] = t
}

// acceptedTerms is class o's policy and retention as those who accepted
// its notice version v agreed to them. When Steward cannot tell (a version
// published before it kept them, or v 0: nothing accepted) it takes the
// stricter of its private defaults and the earliest policy it kept for
// the class, so what it does not know never widens collection beyond what
// it was when it started keeping them. Retention goes the same way: a
// version kept before Steward recorded it counts as the default periods,
// and one it cannot tell as the shorter of those and the earliest kept.
func (s Settings) acceptedTerms(o Ownership, v int64) (ClassPolicy, map[Category]time.Duration) {
	if t, ok := s.NoticePolicies[o][v]; ok {
		return t.ClassPolicy, t.retention()
	}
	floor := DefaultPolicy()[o]
	retention := NoticeTerms{}.retention()
	if len(s.NoticePolicies[o]) > 0 {
		earliest := s.NoticePolicies[o][slices.Min(slices.Collect(maps.Keys(s.NoticePolicies[o])))]
		floor.Modes = stricterModes(floor, earliest.ClassPolicy)
		for c, r := range earliest.retention() {
			retention[c] = shorterRetention(retention[c], r)
		}
	}
	return floor, retention
}

// retention is, per category, the period t gave: the catalogue's default
// where it recorded none.
func (t NoticeTerms) retention() map[Category]time.Duration {
	out := make(map[Category]time.Duration, len(Categories))
	for _, c := range Categories {
		out[c.Category] = c.Retention
		if d, ok := t.RetentionDays[c.Category]; ok {
			out[c.Category] = time.Duration(d) * day
		}
	}
	return out
}

// shorterRetention is the shorter of two periods, zero being while the
// device is managed: the longest.
func shorterRetention(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// stricterModes is, per category, the more private of a's and b's modes.
func stricterModes(a, b ClassPolicy) map[Category]Mode {
	out := make(map[Category]Mode, len(Categories))
	for _, c := range Categories {
		m, n := a.mode(c.Category), b.mode(c.Category)
		if n.rank() < m.rank() {
			m = n
		}
		out[c.Category] = m
	}
	return out
}

// bindNoticePolicies caps the policy every kept notice version stands for
// at next: a narrowing applies to everyone at once, so those who accept an
// older version afterwards were shown the narrower policy, and a later
// widening must not reach their devices through that version's snapshot.
// A widening leaves the snapshots as they are.
func (s *Settings) bindNoticePolicies(next Policy) {
	s.rewriteNoticeTerms(func(o Ownership, t NoticeTerms) NoticeTerms {
		t.Modes = stricterModes(t.ClassPolicy, next[o])
		return t
	})
}

// rewriteNoticeTerms replaces every kept notice version's terms with what
// rewrite makes of them, in fresh maps: the decoded settings may be shared
// (ViewSettings).
func (s *Settings) rewriteNoticeTerms(rewrite func(Ownership, NoticeTerms) NoticeTerms) {
	out := make(map[Ownership]map[int64]NoticeTerms, len(s.NoticePolicies))
	for o, versions := range s.NoticePolicies {
		out[o] = make(map[int64]NoticeTerms, len(versions))
		for v, t := range versions {
			out[o][v] = rewrite(o, t)
		}
	}
	s.NoticePolicies = out
}
