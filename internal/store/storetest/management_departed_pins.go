package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/store"
)

func testDepartedPINs(t *testing.T, st store.Store) {
	ctx := context.Background()
	a, b := newTenant(t, st, ""), newTenant(t, st, "")
	pin := func(tenant, device string, serial []byte, expires time.Time) store.DepartedPIN {
		return store.DepartedPIN{ID: store.NewID(), TenantID: tenant, DeviceID: device, SerialIndex: serial, Action: "wipe",
			SealedPIN: []byte("sealed " + device), SentAt: micro(at), KeptAt: micro(at.Add(time.Minute)), ExpiresAt: micro(expires)}
	}
	serial := []byte("serial-index-1")
	p1 := pin(a.ID, "dev-1", serial, at.Add(365*24*time.Hour))
	p2 := pin(a.ID, "dev-2", nil, at.Add(24*time.Hour))
	p2.Action = "lock"
	p3 := pin(a.ID, "dev-3", serial, at.Add(365*24*time.Hour)) // the same Mac, enrolled and erased again
	foreign := pin(b.ID, "dev-1", serial, at.Add(24*time.Hour))
	tx(t, st, func(q store.Queries) error {
		for _, p := range []store.DepartedPIN{p1, p2, p3, foreign} {
			if err := q.DepartedPINs().Keep(ctx, p); err != nil {
				return err
			}
		}
		// Kept again (a departure run twice): the first stays.
		again := p1
		again.DeviceID, again.SealedPIN = "dev-other", []byte("another seal")
		return q.DepartedPINs().Keep(ctx, again)
	})
	if err := st.Tx(ctx, func(q store.Queries) error {
		empty := pin(a.ID, "dev-4", nil, at)
		empty.SealedPIN = nil
		return q.DepartedPINs().Keep(ctx, empty)
	}); err == nil {
		t.Fatal("Keep without a sealed PIN succeeded")
	}
	r := st.Read().DepartedPINs()
	if got, err := r.Get(ctx, a.ID, p1.ID); err != nil || !reflect.DeepEqual(got, p1) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, p1)
	}
	_, err := r.Get(ctx, b.ID, p1.ID)
	wantErr(t, err, store.ErrNotFound, "Get from another tenant")
	list := func(f store.DepartedPINFilter) []store.DepartedPIN {
		t.Helper()
		got, err := r.List(ctx, a.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ids := func(ps ...store.DepartedPIN) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.ID
		}
		return out
	}
	if got := ids(list(store.DepartedPINFilter{})...); !reflect.DeepEqual(got, ids(p1, p2, p3)) {
		t.Errorf("List = %v, want %v", got, ids(p1, p2, p3))
	}
	if got := ids(list(store.DepartedPINFilter{SerialIndex: serial})...); !reflect.DeepEqual(got, ids(p1, p3)) {
		t.Errorf("List by serial = %v, want %v", got, ids(p1, p3))
	}
	if got := list(store.DepartedPINFilter{DeviceID: "dev-2"}); len(got) != 1 || !reflect.DeepEqual(got[0], p2) {
		t.Errorf("List by device = %+v, want %+v", got, p2)
	}
	if got := ids(list(store.DepartedPINFilter{Page: store.Page{After: p1.ID, Limit: 1}})...); !reflect.DeepEqual(got, ids(p2)) {
		t.Errorf("List after %s, 1 = %v, want %v", p1.ID, got, ids(p2))
	}
	// Two expired, one per tenant: each is counted under its tenant.
	var counts []store.PurgeCount
	tx(t, st, func(q store.Queries) (err error) {
		counts, err = q.DepartedPINs().PurgeExpired(ctx, at.Add(48*time.Hour), 100)
		return err
	})
	want := map[string]int{a.ID: 1, b.ID: 1}
	for _, c := range counts {
		if c.Category != "departed_mac_pins" || want[c.TenantID] != c.Rows {
			t.Errorf("PurgeExpired counted %+v, want one per tenant", c)
		}
		delete(want, c.TenantID)
	}
	if len(want) != 0 {
		t.Errorf("PurgeExpired missed tenants %v: %+v", want, counts)
	}
	if got := ids(list(store.DepartedPINFilter{})...); !reflect.DeepEqual(got, ids(p1, p3)) {
		t.Errorf("List after the purge = %v, want %v", got, ids(p1, p3))
	}
}
