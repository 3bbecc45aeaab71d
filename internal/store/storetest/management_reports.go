package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testReportSchedules(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	s := store.ReportSchedule{ID: store.NewID(), TenantID: a.ID, Kind: "inventory", Format: "pdf", Recipients: []string{"admin-1", "admin-2"},
		Every: "weekly", LinkDays: 7, PasswordSealed: []byte("sealed"), NextRunAt: micro(at.Add(time.Hour)), CreatedBy: "admin:x", CreatedAt: micro(at)}
	s.LastRunAt = time.Unix(0, 0).UTC()
	tx(t, st, func(q store.Queries) error { return q.Reports().CreateSchedule(ctx, s) })
	got, err := st.Read().Reports().GetSchedule(ctx, a.ID, s.ID)
	must(t, err)
	got.LastRunAt = s.LastRunAt // zero round-trips as the epoch or zero, either reads as "never"
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	_, err = st.Read().Reports().GetSchedule(ctx, b.ID, s.ID)
	wantErr(t, err, store.ErrNotFound, "other tenant's schedule")
	wantErr(t, st.Tx(ctx, func(q store.Queries) error { return q.Reports().DeleteSchedule(ctx, b.ID, s.ID) }), store.ErrNotFound, "deleting from another tenant")
	other := s
	other.ID, other.TenantID, other.NextRunAt = store.NewID(), b.ID, micro(at.Add(30*time.Minute))
	tx(t, st, func(q store.Queries) error { return q.Reports().CreateSchedule(ctx, other) })
	due, err := st.Read().Reports().DueSchedules(ctx, at.Add(2*time.Hour), 10)
	must(t, err)
	if len(due) != 2 || due[0].ID != other.ID || due[1].ID != s.ID {
		t.Fatalf("due schedules across tenants, by due time: %+v", due)
	}
	if due, _ = st.Read().Reports().DueSchedules(ctx, at.Add(45*time.Minute), 10); len(due) != 1 {
		t.Fatalf("due at 45 min: %d", len(due))
	}
	tx(t, st, func(q store.Queries) error {
		return q.Reports().MarkRun(ctx, a.ID, s.ID, at.Add(time.Hour), at.Add(8*24*time.Hour))
	})
	if due, _ = st.Read().Reports().DueSchedules(ctx, at.Add(2*time.Hour), 10); len(due) != 1 || due[0].ID != other.ID {
		t.Fatalf("after a run: %+v", due)
	}
	list, err := st.Read().Reports().ListSchedules(ctx, a.ID, store.Page{})
	must(t, err)
	if len(list) != 1 || !list[0].LastRunAt.Equal(micro(at.Add(time.Hour))) {
		t.Fatalf("list: %+v", list)
	}

	p := store.PublishedReport{ID: store.NewID(), TenantID: a.ID, ScheduleID: s.ID, TokenHash: []byte("token-hash"), Archive: []byte("zip"),
		ExpiresAt: micro(at.Add(24 * time.Hour)), CreatedAt: micro(at)}
	tx(t, st, func(q store.Queries) error { return q.Reports().Publish(ctx, p) })
	gotP, err := st.Read().Reports().PublishedByToken(ctx, []byte("token-hash"))
	must(t, err)
	if !reflect.DeepEqual(gotP, p) {
		t.Fatalf("published round trip:\n got %+v\nwant %+v", gotP, p)
	}
	_, err = st.Read().Reports().PublishedByToken(ctx, []byte("other"))
	wantErr(t, err, store.ErrNotFound, "unknown token")
	counts, err := st.Read().Reports().PurgePublished(ctx, at.Add(48*time.Hour), 10)
	must(t, err)
	if len(counts) != 1 || counts[0].Rows != 1 || counts[0].TenantID != a.ID {
		t.Fatalf("purge: %+v", counts)
	}
	tx(t, st, func(q store.Queries) error {
		p.ID, p.TokenHash = store.NewID(), []byte("second-token")
		return q.Reports().Publish(ctx, p)
	})
	tx(t, st, func(q store.Queries) error { return q.Reports().DeleteSchedule(ctx, a.ID, s.ID) })
	_, err = st.Read().Reports().PublishedByToken(ctx, []byte("second-token"))
	wantErr(t, err, store.ErrNotFound, "a published report of a deleted schedule")
}
