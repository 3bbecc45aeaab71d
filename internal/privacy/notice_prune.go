package privacy

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// pruneNoticePolicies drops the policies kept for notice versions of class
// o that no device's owner stands on any more: no live consent accepted
// them, no enrolment not yet used was made under them, and they are not
// the current version. The earliest kept stays whatever: acceptedTerms
// takes it as the floor for a version it cannot tell, and dropping it
// could widen that floor. It says how many it dropped.
//
// The caller has saved the settings in this transaction first: on
// PostgreSQL the row's lock then holds back consents and enrolments that
// read the old current version (they read it shared, see
// RecordConsentIn), and those already committed are seen here.
func pruneNoticePolicies(ctx context.Context, q store.Queries, tenantID string, s *Settings, o Ownership) (int, error) {
	kept := s.NoticePolicies[o]
	if len(kept) <= 2 {
		return 0, nil // the earliest and the current
	}
	live, err := q.Consents().LiveVersions(ctx, tenantID, string(o))
	if err != nil {
		return 0, err
	}
	pending, err := q.Enrolments().PendingVersions(ctx, tenantID, string(o))
	if err != nil {
		return 0, err
	}
	earliest := slices.Min(slices.Collect(maps.Keys(kept)))
	dropped := 0
	for v := range kept {
		if v == earliest || v == s.NoticeVersions[o] || slices.Contains(live, v) || slices.Contains(pending, v) {
			continue
		}
		delete(kept, v)
		dropped++
	}
	return dropped, nil
}

// LoadSettingsShared is LoadSettings under a shared lock of the settings
// row (PostgreSQL), for a transaction that records the current notice
// version somewhere (an enrolment): a publication, which may prune the
// policies of versions nobody stands on, waits for it to commit.
func LoadSettingsShared(ctx context.Context, q store.Queries, tenantID string, now time.Time) (Settings, error) {
	return loadSettingsShared(ctx, q, tenantID, now)
}
