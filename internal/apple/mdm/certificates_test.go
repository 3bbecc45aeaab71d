package mdm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/steward-mdm/steward/internal/apple/certtest"
	"github.com/steward-mdm/steward/internal/apple/mdm"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestPersonalDeviceKeepsOnlyOrganisationCertificates: a personally owned
// device that answers CertificateList with every certificate, whatever
// ManagedOnly asked, has only its MDM identity stored, which the tenant's
// issuing CA signed. The employee's own CA and the e-mail identity it
// issued, a certificate that copies the issuing CA's name and key ID
// without its signature, and an entry that is no certificate are dropped;
// the log counts them and names none. A corporate device keeps its full
// list.
func TestPersonalDeviceKeepsOnlyOrganisationCertificates(t *testing.T) {
	for _, o := range []privacy.Ownership{privacy.Personal, privacy.UserEnrolled, privacy.Corporate} {
		t.Run(string(o), func(t *testing.T) {
			storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
				f := newFixture(t, st)
				var logged bytes.Buffer
				f.log = slog.New(slog.NewTextHandler(&logged, nil))
				f.publish(o)
				ts := f.serve()
				subject := f.ownerOf(o)
				d, dev := f.enrolled(ts, o, subject)
				d.Certificates, d.IgnoresManagedCertificatesOnly = employeeCertificates(t, d.Certificate()), true
				stored := listCertificates(t, f, d, dev)
				var names []string
				for _, c := range stored {
					names = append(names, c.CommonName)
				}
				identity := sha256.Sum256(d.Certificate().Raw)
				switch {
				case o.PersonallyOwned() && (len(stored) != 1 || stored[0].Fingerprint != hex.EncodeToString(identity[:])):
					t.Errorf("stored %q, want only the device's MDM identity", names)
				case o.PersonallyOwned() && !strings.Contains(logged.String(), "dropped=4"):
					t.Errorf("want a warning counting 4 dropped certificates; logged:\n%s", logged.String())
				case !o.PersonallyOwned() && len(stored) != 1+len(d.Certificates):
					t.Errorf("a corporate device stored %q, want its identity and all %d others", names, len(d.Certificates))
				case strings.Contains(logged.String(), "Erika"):
					t.Errorf("the log names a certificate:\n%s", logged.String())
				}
			})
		})
	}
}

// TestPersonalCertificateListIsJudgedWithinItsBound: a personally owned
// device's list is judged no further than a list is stored (500 entries),
// so thousands of entries cost no more signature checks in the exchange's
// transaction than a list Steward keeps.
func TestPersonalCertificateListIsJudgedWithinItsBound(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	var logged bytes.Buffer
	f.log = slog.New(slog.NewTextHandler(&logged, nil))
	f.publish(privacy.Personal)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	d.IgnoresManagedCertificatesOnly = true
	own := employeeCertificates(t, d.Certificate())[1] // a real signature to check
	for range 600 {
		d.Certificates = append(d.Certificates, own)
	}
	stored := listCertificates(t, f, d, dev)
	identity := sha256.Sum256(d.Certificate().Raw)
	if len(stored) != 1 || stored[0].Fingerprint != hex.EncodeToString(identity[:]) {
		t.Errorf("stored %d certificates, want only the device's MDM identity, listed first", len(stored))
	}
	if !strings.Contains(logged.String(), "dropped=600 unexamined=101") {
		t.Errorf("want 499 judged and dropped, 101 not judged; logged:\n%s", logged.String())
	}
}

// employeeCertificates are what an employee may have installed on their
// own device: their own CA, the e-mail identity it issued them, a
// certificate passing itself off as issued by the device identity's CA,
// and something that is no certificate at all.
func employeeCertificates(t *testing.T, identity *x509.Certificate) []sim.Certificate {
	t.Helper()
	root, rootKey := certtest.Issue(t, "Erika Mustermann Root", true, nil, nil)
	email, _ := certtest.Issue(t, "Erika Mustermann", false, root, rootKey)
	// The issuer's name and key ID copied, but another key signs.
	copied := &x509.Certificate{RawSubject: identity.RawIssuer, SubjectKeyId: identity.AuthorityKeyId}
	_, forgerKey := certtest.Issue(t, "Erika's forger", true, nil, nil)
	impostor, _ := certtest.Issue(t, "Erika's VPN", false, copied, forgerKey)
	return []sim.Certificate{
		{CommonName: "Erika Mustermann Root", Data: root.Raw},
		{CommonName: "Erika Mustermann", Identity: true, Data: email.Raw},
		{CommonName: "Erika's VPN", Identity: true, Data: impostor.Raw},
		{CommonName: "Erika's broken certificate", Data: []byte("not DER at all")},
	}
}

// TestPublicCAsVouchForNothing: a publicly trusted CA that a profile
// carries (the intermediate of a work S/MIME identity) issues to anyone,
// so the employee's own certificate from it is dropped on a personal
// device; the organisation's own CA still vouches for what it issued. A
// root the bundle marks distrusted for newer certificates (Mozilla's
// distrust-after) is still a public PKI's.
func TestPublicCAsVouchForNothing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		constraint func([]*x509.Certificate) error
	}{
		{"unconstrained root", nil},
		{"root distrusted for newer certificates", func([]*x509.Certificate) error {
			return errors.New("certificate issued after the root's distrust-after date")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storetest.OpenSQLite(t))
			f.publish(privacy.Personal)
			ts := f.serve()
			d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))

			publicRoot, publicRootKey := certtest.Issue(t, "Public Root", true, nil, nil)
			publicCA, publicKey := certtest.Issue(t, "Public S/MIME CA", true, publicRoot, publicRootKey)
			ownCA, ownKey := certtest.Issue(t, "Acme Device CA", true, nil, nil)
			workMail, _ := certtest.Issue(t, "Erika at Acme", false, publicCA, publicKey)
			ownMail, _ := certtest.Issue(t, "Erika's own S/MIME", false, publicCA, publicKey)
			device, _ := certtest.Issue(t, "Acme device 42", false, ownCA, ownKey)
			mdm.SetPublicRoots(t, mdm.PublicRootPool(slices.Values([]bundle.Root{{Certificate: publicRoot.Raw, Constraint: tc.constraint}})))
			f.svc.SetHooks(mdm.Hooks{ProfileCertificates: func(context.Context, store.Queries, store.Device) ([]*x509.Certificate, error) {
				return []*x509.Certificate{workMail, publicCA, ownCA}, nil // what the profiles on the device carry
			}})
			d.IgnoresManagedCertificatesOnly = true
			for _, c := range []*x509.Certificate{workMail, ownMail, device} {
				d.Certificates = append(d.Certificates, sim.Certificate{CommonName: c.Subject.CommonName, Data: c.Raw})
			}
			stored := listCertificates(t, f, d, dev)
			names := map[string]bool{}
			for _, c := range stored {
				names[c.CommonName] = true
			}
			if len(stored) != 3 || !names["Erika at Acme"] || !names["Acme device 42"] || names["Erika's own S/MIME"] {
				t.Errorf("stored %v; want the MDM identity, the work identity and the device certificate, not the employee's own", names)
			}
		})
	}
}

// listCertificates has device d answer a CertificateList and returns what
// Steward stored of it.
func listCertificates(t *testing.T, f *fixture, d *sim.Device, dev store.Device) []mdm.Certificate {
	t.Helper()
	if _, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.CertificateList{}, "", admin); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	var stored []mdm.Certificate
	if err := json.Unmarshal(f.fields(dev.ID)["security.certificates"].Value, &stored); err != nil {
		t.Fatal(err)
	}
	return stored
}

// TestHostTrustStoreDoesNotDecide: an organisation that added its private
// root to the server host's trust store still has its CA vouch for the
// identities it issued: what counts as public is the bundle's roots
// (Mozilla's for server authentication), not the host's. The judgement runs in a child process whose host store
// (SSL_CERT_FILE) holds the private root.
func TestHostTrustStoreDoesNotDecide(t *testing.T) {
	if dir := os.Getenv("STEWARD_TEST_HOST_TRUST_DIR"); dir != "" {
		privateCAKeepsItsRule(t, dir)
		return
	}
	root, rootKey := certtest.Issue(t, "Acme Private Root", true, nil, nil)
	ca, caKey := certtest.Issue(t, "Acme Device CA", true, root, rootKey)
	identity, _ := certtest.Issue(t, "Acme device 42", false, ca, caKey)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "host-roots.pem")
	for name, data := range map[string][]byte{rootFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		filepath.Join(dir, "ca.der"): ca.Raw, filepath.Join(dir, "identity.der"): identity.Raw} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	child := exec.Command(os.Args[0], "-test.run=^TestHostTrustStoreDoesNotDecide$", "-test.count=1", "-test.v")
	child.Env = append(os.Environ(), "STEWARD_TEST_HOST_TRUST_DIR="+dir, "SSL_CERT_FILE="+rootFile, "SSL_CERT_DIR="+t.TempDir())
	out, err := child.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHostTrustStoreDoesNotDecide") {
		t.Fatalf("the child process (host store holding the private root): %v\n%s", err, out)
	}
}

// privateCAKeepsItsRule is TestHostTrustStoreDoesNotDecide's child: the
// host trusts the private root, and a personal device's identity from the
// CA a profile carries is still kept.
func privateCAKeepsItsRule(t *testing.T, dir string) {
	read := func(name string) *x509.Certificate {
		der, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, identity := read("ca.der"), read("identity.der")
	host, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Verify(x509.VerifyOptions{Roots: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the host store should trust the private root here: %v", err)
	}
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	f.svc.SetHooks(mdm.Hooks{ProfileCertificates: func(context.Context, store.Queries, store.Device) ([]*x509.Certificate, error) {
		return []*x509.Certificate{ca}, nil // the profile on the device carries the private CA
	}})
	d.Certificates = []sim.Certificate{{CommonName: "Acme device 42", Identity: true, Data: identity.Raw, Managed: true}}
	stored := listCertificates(t, f, d, dev)
	if len(stored) != 2 || !slices.ContainsFunc(stored, func(c mdm.Certificate) bool { return c.CommonName == "Acme device 42" }) {
		t.Errorf("stored %+v; want the MDM identity and the private CA's identity", stored)
	}
}

// TestServerFailureKeepsTheAnswer: a result the server fails to take in
// for a reason of its own (here the certificates its profiles carry could
// not be read) is not finished as an undecodable answer: the device gets
// a 5xx, the command stays sent, and the answer it sends again is kept.
func TestServerFailureKeepsTheAnswer(t *testing.T) {
	f := newFixture(t, storetest.OpenSQLite(t))
	f.publish(privacy.Personal)
	ts := f.serve()
	d, dev := f.enrolled(ts, privacy.Personal, f.subject("erika@acme.test"))
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	failing := true
	f.svc.SetHooks(mdm.Hooks{ProfileCertificates: func(context.Context, store.Queries, store.Device) ([]*x509.Certificate, error) {
		if failing {
			return nil, errors.New("the profiles' certificates could not be read")
		}
		return nil, nil
	}})
	cmds, err := f.svc.Enqueue(f.ctx, f.tenant, []string{dev.ID}, mdmproto.CertificateList{}, "", admin)
	if err != nil {
		t.Fatal(err)
	}
	var se *sim.StatusError
	if _, err := d.Poll(f.ctx); !errors.As(err, &se) || se.Status < 500 {
		t.Fatalf("the answer the server failed to take in: %v, want a 5xx", err)
	}
	if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); got.State != store.CommandSent {
		t.Fatalf("after the server's failure the command is %s (%s), want sent", got.State, mdm.ErrorSummary(got.ErrorChain))
	}
	failing = false
	if _, err := d.Poll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.Read().Commands().Get(f.ctx, f.tenant, cmds[0].ID); got.State != store.CommandAcknowledged {
		t.Errorf("the answer sent again left the command %s (%s), want acknowledged", got.State, mdm.ErrorSummary(got.ErrorChain))
	}
	if _, ok := f.fields(dev.ID)["security.certificates"]; !ok {
		t.Error("the answer sent again was not kept")
	}
}
