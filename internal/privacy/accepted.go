package privacy

import (
	"context"
	"maps"
	"slices"

	"github.com/steward-mdm/steward/internal/store"
)

// EffectivePolicy returns the policy d's data is collected and shown under.
// On a personally owned device that is, per category, the stricter of the
// current policy and the one its owner accepted (acceptedPolicy): a
// widening waits for them to accept the notice it published, a narrowing
// applies at once. The full-wipe permission stays the current policy's;
// the employee answers it separately, on the enrolment page. Corporate and
// shared devices have no consent to wait for: they get settings.Policy
// itself, without a read. The result is shared and must not be modified.
func EffectivePolicy(ctx context.Context, q store.Queries, settings Settings, d store.Device) (Policy, error) {
	o := Ownership(d.Ownership)
	if !o.PersonallyOwned() {
		return settings.Policy, nil
	}
	version, err := acceptedVersion(ctx, q, d)
	if err != nil {
		return nil, err
	}
	current := settings.Policy[o]
	out := maps.Clone(settings.Policy)
	out[o] = ClassPolicy{Modes: stricterModes(current, settings.acceptedPolicy(o, version)), FullWipe: current.FullWipe}
	return out, nil
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
// version v is accepted under. Only personally owned classes ask for
// consent, so only theirs are kept.
func (s *Settings) keepNoticePolicy(o Ownership, v int64) {
	if !o.PersonallyOwned() {
		return
	}
	if s.NoticePolicies == nil {
		s.NoticePolicies = map[Ownership]map[int64]ClassPolicy{}
	}
	if s.NoticePolicies[o] == nil {
		s.NoticePolicies[o] = map[int64]ClassPolicy{}
	}
	cp := s.Policy[o]
	s.NoticePolicies[o][v] = ClassPolicy{Modes: maps.Clone(cp.Modes), FullWipe: cp.FullWipe}
}

// acceptedPolicy is class o's policy as those who accepted its notice
// version v agreed to it. When Steward cannot tell (a version published
// before it kept them, or v 0: nothing accepted) it takes the stricter of
// its private defaults and the earliest policy it kept for the class, so
// what it does not know never widens collection beyond what it was when
// it started keeping them.
func (s Settings) acceptedPolicy(o Ownership, v int64) ClassPolicy {
	if cp, ok := s.NoticePolicies[o][v]; ok {
		return cp
	}
	floor := DefaultPolicy()[o]
	if len(s.NoticePolicies[o]) > 0 {
		earliest := slices.Min(slices.Collect(maps.Keys(s.NoticePolicies[o])))
		floor.Modes = stricterModes(floor, s.NoticePolicies[o][earliest])
	}
	return floor
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
