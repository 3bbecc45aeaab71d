package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

// testUnmanagedSubjects: a person is unmanaged once marked before the
// cutoff, while active, with no device that has not left and no enrolment
// link that could still enrol one; across tenants, by ID. A device on
// record, an open or accepted unexpired link, a mark after the cutoff, no
// mark, or an erasure keeps a person out.
func testUnmanagedSubjects(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	cutoff, now := micro(at), micro(at.Add(time.Hour))
	mark := func(s store.Subject, since time.Time) {
		t.Helper()
		tx(t, st, func(q store.Queries) error { return q.Subjects().MarkUnmanaged(ctx, s.TenantID, s.ID, since) })
	}
	left := func(s store.Subject, state string) {
		t.Helper()
		d := newDevice(t, st, s.TenantID, s.ID, "personal")
		d.State, d.DeprovisionedAt = state, micro(at.Add(-48*time.Hour))
		tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d) })
	}
	link := func(s store.Subject, state string, expires time.Time) {
		t.Helper()
		e := store.Enrolment{ID: store.NewID(), TenantID: s.TenantID, Ownership: "personal", SubjectID: s.ID, NoticeVersion: 1,
			SecretHash: []byte("hash-" + store.NewID()), State: state, CreatedBy: "admin:x", CreatedAt: micro(at.Add(-time.Hour)), ExpiresAt: expires}
		tx(t, st, func(q store.Queries) error { return q.Enrolments().Create(ctx, e) })
	}
	due := map[string]store.Subject{}
	// Due: all devices left, in either tenant; a link used, revoked or expired.
	for _, tn := range []store.Tenant{a, b} {
		s := newSubject(t, st, tn.ID, nil)
		left(s, store.DeviceRetired)
		left(s, store.DeviceDeprovisioned)
		link(s, store.EnrolmentUsed, now.Add(time.Hour))
		link(s, store.EnrolmentRevoked, now.Add(time.Hour))
		link(s, store.EnrolmentOpen, now) // expired at now
		mark(s, cutoff.Add(-time.Minute))
		due[s.ID] = s
	}
	// Kept: a device on record that is managed, pending or leaving; a
	// usable link; a mark at or after the cutoff; no mark; an erased person.
	for _, keep := range []func(s store.Subject){
		func(s store.Subject) { newDevice(t, st, s.TenantID, s.ID, "corporate") },
		func(s store.Subject) {
			d := newDevice(t, st, s.TenantID, s.ID, "personal")
			d.State = store.DeviceLeaving
			tx(t, st, func(q store.Queries) error { return q.Devices().Update(ctx, d) })
		},
		func(s store.Subject) { link(s, store.EnrolmentOpen, now.Add(time.Minute)) },
		func(s store.Subject) { link(s, store.EnrolmentAccepted, now.Add(time.Minute)) },
		func(s store.Subject) { mark(s, cutoff) },
		func(s store.Subject) { mark(s, time.Time{}) },
		func(s store.Subject) {
			s.State, s.ErasedAt, s.Profile, s.EmailIndex = store.SubjectErased, micro(at), nil, nil
			tx(t, st, func(q store.Queries) error { return q.Subjects().Update(ctx, s) })
		},
	} {
		s := newSubject(t, st, a.ID, nil)
		left(s, store.DeviceWiped)
		mark(s, cutoff.Add(-time.Hour))
		keep(s)
	}
	var got []string
	for after := ""; ; {
		page, err := st.Read().Subjects().Unmanaged(ctx, cutoff, now, after, 1)
		must(t, err)
		if len(page) == 0 {
			break
		}
		got, after = append(got, page[0].ID), page[0].ID
	}
	var want []string
	for id := range due {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("unmanaged people %v, want %v", got, want)
	}
	for id, s := range due {
		ok, err := st.Read().Subjects().IsUnmanaged(ctx, s.TenantID, id, cutoff, now)
		if err != nil || !ok {
			t.Errorf("IsUnmanaged(%s) = %v, %v; want true", id, ok, err)
		}
		if ok, err := st.Read().Subjects().IsUnmanaged(ctx, otherTenant(a, b, s.TenantID), id, cutoff, now); err != nil || ok {
			t.Errorf("IsUnmanaged in another tenant = %v, %v; want false", ok, err)
		}
	}
	stranger := newSubject(t, st, a.ID, nil)
	wantErr(t, st.Tx(ctx, func(q store.Queries) error {
		return q.Subjects().MarkUnmanaged(ctx, b.ID, stranger.ID, now)
	}), store.ErrNotFound, "marking another tenant's person")
}

func otherTenant(a, b store.Tenant, id string) string {
	if id == a.ID {
		return b.ID
	}
	return a.ID
}
