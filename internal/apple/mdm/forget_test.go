package mdm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// identity is a device certificate as SCEP would issue it, expiring at notAfter.
func identity(t *testing.T, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "device"},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (f *fixture) bindingKeys() []string {
	f.t.Helper()
	page, err := f.st.Read().Settings().ListPrefix(f.ctx, "mdm-cert:", "", 100)
	if err != nil {
		f.t.Fatal(err)
	}
	var keys []string
	for _, s := range page {
		keys = append(keys, s.Key)
	}
	return keys
}

func TestUnusedCertificateBindingsGo(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	other := store.NewID()
	put := func(key, value string) {
		if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Settings().Put(f.ctx, key, []byte(value)) }); err != nil {
			t.Fatal(err)
		}
	}
	// Bindings as BindIssuedCertificate writes them for renewals.
	bind := func(tenant string, notAfter time.Time) string {
		cert := identity(t, notAfter)
		key := "mdm-cert:" + hex.EncodeToString(mdm.Fingerprint(cert))
		put(key, `{"tenant_id":"`+tenant+`","enrolment_id":"enrolment-1","renewal":true,"not_after":"`+cert.NotAfter.UTC().Format(time.RFC3339)+`"}`)
		return key
	}
	expiring := bind(f.tenant, f.now.Add(time.Hour))
	valid := bind(f.tenant, f.now.Add(30*24*time.Hour))
	elsewhere := bind(other, f.now.Add(30*24*time.Hour))
	put("mdm-cert:00unreadable", "not json")
	put("mdm-cert:01legacy", `{"tenant_id":"`+f.tenant+`","enrolment_id":"enrolment-0"}`) // written before bindings knew their expiry

	f.now = f.now.Add(2 * time.Hour)
	if n, err := f.svc.PurgeStaleCertBindings(f.ctx); err != nil || n != 2 {
		t.Fatalf("PurgeStaleCertBindings = %d, %v; want the expired and the unreadable binding", n, err)
	}
	want := []string{"mdm-cert:01legacy", valid, elsewhere}
	slices.Sort(want)
	if got := f.bindingKeys(); !slices.Equal(got, want) || slices.Contains(got, expiring) {
		t.Fatalf("after the purge: %v, want %v", got, want)
	}

	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return f.svc.ForgetTenant(f.ctx, q, f.tenant) }); err != nil {
		t.Fatal(err)
	}
	if got := f.bindingKeys(); !slices.Equal(got, []string{elsewhere}) {
		t.Fatalf("after the tenant was forgotten: %v, want only the other tenant's %s", got, elsewhere)
	}
}

// TestTenantCADeletedOnAnotherNode: a node keeps a tenant's CA cached, so
// a tenant deleted on another node is read again within a minute: from
// then on its devices are refused here too, and nothing is made for it.
func TestTenantCADeletedOnAnotherNode(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Corporate)
	ts := f.serve()
	f.svc.SetClock(func() time.Time { return f.now })
	d, _ := f.enrolled(ts, privacy.Corporate, "")
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	// What the other node's deletion leaves of the CA: nothing.
	if _, err := f.st.Read().Settings().DeletePrefix(f.ctx, "scep-ca:"+f.tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatalf("within a minute the cached CA still serves: %v", err)
	}
	f.now = f.now.Add(2 * time.Minute)
	var refused *sim.StatusError
	if _, err := d.Poll(f.ctx); !errors.As(err, &refused) || refused.Status != http.StatusForbidden {
		t.Fatalf("a device of a tenant whose CA was deleted elsewhere: %v, want 403", err)
	}
}

// TestTenantReplacementsGo: a deleted tenant's replacements waiting on an
// earlier record (reenrol.go) go with it; another tenant's stay.
func TestTenantReplacementsGo(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	erika := f.subject("erika@acme.test")
	erased, _ := f.enrolledAs(ts, "", privacy.Personal, erika)
	f.enrolledAs(ts, erased.UDID, privacy.Personal, erika)
	elsewhere := "mdm-replace:" + store.NewID() + ":" + store.NewID()
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return q.Settings().Put(f.ctx, elsewhere, []byte(`{}`)) }); err != nil {
		t.Fatal(err)
	}
	replacements := func() []string {
		page, err := f.st.Read().Settings().ListPrefix(f.ctx, "mdm-replace:", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, s := range page {
			keys = append(keys, s.Key)
		}
		return keys
	}
	if got := replacements(); len(got) != 2 {
		t.Fatalf("replacements before the tenant was forgotten: %v; want the tenant's and another's", got)
	}
	if err := f.st.Tx(f.ctx, func(q store.Queries) error { return f.svc.ForgetTenant(f.ctx, q, f.tenant) }); err != nil {
		t.Fatal(err)
	}
	if got := replacements(); !slices.Equal(got, []string{elsewhere}) {
		t.Fatalf("after the tenant was forgotten: %v; want only the other tenant's %s", got, elsewhere)
	}
}
