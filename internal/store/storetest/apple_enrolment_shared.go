package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testEnrolmentGetShared: GetShared reads as Get does, and on PostgreSQL
// it serialises with a change to the row: a take-back of the full-wipe
// permission waits for the reader, and a reader waits for one under way
// and reads what it committed.
func testEnrolmentGetShared(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	e := store.Enrolment{ID: store.NewID(), TenantID: a.ID, Ownership: "personal", SubjectID: "s1", NoticeVersion: 1,
		SecretHash: []byte("hash-shared"), State: store.EnrolmentOpen, CreatedBy: "admin:x", CreatedAt: micro(at), ExpiresAt: micro(at.Add(time.Hour))}
	tx(t, st, func(q store.Queries) error {
		if err := q.Enrolments().Create(ctx, e); err != nil {
			return err
		}
		return q.Enrolments().Accept(ctx, a.ID, e.ID, true)
	})
	e.State, e.AllowFullWipe = "accepted", true
	tx(t, st, func(q store.Queries) error {
		got, err := q.Enrolments().GetShared(ctx, a.ID, e.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("GetShared:\n got %+v\nwant %+v", got, e)
		}
		_, err = q.Enrolments().GetShared(ctx, b.ID, e.ID)
		wantErr(t, err, store.ErrNotFound, "another tenant's enrolment, shared")
		return nil
	})
	if st.Engine() != "postgres" {
		return // SQLite's single writer runs one transaction at a time
	}

	// The reader holds the row: the take-back waits for it.
	release := Hold(t, st, func(q store.Queries) error {
		_, err := q.Enrolments().GetShared(ctx, a.ID, e.ID)
		return err
	})
	takenBack := make(chan error, 1)
	go func() {
		takenBack <- st.Tx(ctx, func(q store.Queries) error { return q.Enrolments().TakeBackFullWipe(ctx, a.ID, e.ID) })
	}()
	AwaitLockWaiters(t, st, 1)
	release()
	must(t, <-takenBack)

	// A take-back under way holds the row: the reader waits and reads it.
	tx(t, st, func(q store.Queries) error { return q.Enrolments().Update(ctx, e) }) // allowed again, to be taken back
	commit := Hold(t, st, func(q store.Queries) error { return q.Enrolments().TakeBackFullWipe(ctx, a.ID, e.ID) })
	read, readErr := make(chan store.Enrolment, 1), make(chan error, 1)
	go func() {
		readErr <- st.Tx(ctx, func(q store.Queries) error {
			got, err := q.Enrolments().GetShared(ctx, a.ID, e.ID)
			read <- got
			return err
		})
	}()
	AwaitLockWaiters(t, st, 1)
	commit()
	must(t, <-readErr)
	if got := <-read; got.ID != e.ID || got.AllowFullWipe {
		t.Errorf("GetShared while a take-back was under way: %+v; want the permission read as taken back", got)
	}
}
