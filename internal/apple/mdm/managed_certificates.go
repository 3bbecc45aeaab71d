package mdm

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"iter"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/scep"
	"github.com/steward-mdm/steward/internal/store"
)

// organisationCertificates keeps, of the certificates a personally owned
// device reported, those Steward can show are the organisation's. Steward
// asks such a device for managed certificates only, but a device that
// ignores the request (an older or faulty OS, or a tampered one) would hand
// over the employee's own: personal e-mail identities, their own CAs, their
// names. So Steward decides itself. A certificate is the organisation's
// when
//   - the tenant's CA, or its issuing CA, signed it: the device's MDM
//     identity;
//   - it is, byte for byte, one that a profile Steward has installed or is
//     installing on the device carries (hooks.ProfileCertificates);
//   - a CA certificate such a profile carries signed it, unless that CA is
//     publicly trusted: an identity a profile's SCEP payload obtained from
//     the organisation's own CA, which the profile ships.
//
// Signatures decide, never names, which anyone can copy; an entry whose
// data is not a certificate shows nothing. The others are dropped before
// the gate; only their number is logged, as their names are the employee's
// personal data.
func (s *Service) organisationCertificates(ctx context.Context, q store.Queries, d store.Device, reported []mdmproto.InstalledCertificate) ([]mdmproto.InstalledCertificate, error) {
	ca, err := s.tenantCA(ctx, d.TenantID)
	if err != nil {
		return nil, err
	}
	var carried []*x509.Certificate
	if s.hooks.ProfileCertificates != nil {
		if carried, err = s.hooks.ProfileCertificates(ctx, q, d); err != nil {
			return nil, err
		}
	}
	ours := newCertificateEvidence(ca, carried, publicRoots())
	// Judged no further than a list is stored: each entry costs a parse and
	// signature checks, in the exchange's transaction, and a 4 MiB answer
	// can hold thousands.
	examined := reported[:min(len(reported), maxCertificates)]
	kept := make([]mdmproto.InstalledCertificate, 0, len(examined))
	for _, c := range examined {
		if ours.vouchesFor(c.Data) {
			kept = append(kept, c)
		}
	}
	if dropped := len(reported) - len(kept); dropped > 0 {
		s.log.Warn("a personally owned device reported certificates that are not the organisation's; they were dropped",
			"tenant", d.TenantID, "device", d.ID, "dropped", dropped, "unexamined", len(reported)-len(examined))
	}
	return kept, nil
}

// certificateEvidence is what shows a certificate is the organisation's:
// the tenant's CA, and the certificates its profiles carry on the device.
type certificateEvidence struct {
	tenant  *scep.CA
	carried map[[sha256.Size]byte]bool // by the SHA-256 of their DER
	// issuers are the carried certificates once each, but for publicly
	// trusted CAs; CheckSignatureFrom lets only CAs among them sign.
	issuers []*x509.Certificate
}

// publicRoots are the CAs of a public PKI: the roots of the bundle
// package, never the server host's trust store, to which an organisation
// may have added its private root (which would silence that CA's rule) and
// which differs from host to host. A CA a profile carries that chains to
// one (an S/MIME identity's intermediate, say) issues to anyone, the
// employee included, so what it signed is not shown to be the
// organisation's. Only bundle is imported: its parent package, fallback,
// would replace the process's roots for every TLS connection.
//
// The bundle holds the roots Mozilla trusts for server authentication
// only: a public root trusted for e-mail (S/MIME) alone is not in it, and
// a CA chaining to one is taken for the organisation's.
var publicRoots = sync.OnceValue(func() *x509.CertPool { return publicRootPool(bundle.Roots()) })

// publicRootPool makes a pool of roots. A root's constraint is left out:
// Mozilla's distrust-after date ends a root's trust for new TLS
// certificates, yet its CAs remain a public PKI's, which is the question
// here.
func publicRootPool(roots iter.Seq[bundle.Root]) *x509.CertPool {
	pool := x509.NewCertPool()
	for r := range roots {
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			panic("mdm: the public root bundle holds a certificate that does not parse: " + err.Error())
		}
		pool.AddCert(cert)
	}
	return pool
}

func newCertificateEvidence(tenant *scep.CA, carried []*x509.Certificate, roots *x509.CertPool) certificateEvidence {
	e := certificateEvidence{tenant: tenant, carried: map[[sha256.Size]byte]bool{}}
	chain := x509.NewCertPool()
	for _, c := range carried {
		chain.AddCert(c)
	}
	for _, c := range carried {
		sum := sha256.Sum256(c.Raw)
		if !e.carried[sum] {
			e.carried[sum] = true
			if !publiclyTrusted(c, chain, roots) {
				e.issuers = append(e.issuers, c)
			}
		}
	}
	return e
}

// publiclyTrusted says whether ca chains to roots, now or, for one expired
// since, when it was issued.
func publiclyTrusted(ca *x509.Certificate, chain, roots *x509.CertPool) bool {
	for _, at := range []time.Time{time.Now(), ca.NotBefore.Add(time.Minute)} {
		_, err := ca.Verify(x509.VerifyOptions{Roots: roots, Intermediates: chain, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err == nil {
			return true
		}
	}
	return false
}

// vouchesFor reports whether der, a certificate as a device reported it,
// is the organisation's.
func (e certificateEvidence) vouchesFor(der []byte) bool {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return false
	}
	if e.carried[sha256.Sum256(der)] || e.tenant.IssuedByTenant(cert) {
		return true
	}
	return slices.ContainsFunc(e.issuers, func(ca *x509.Certificate) bool { return cert.CheckSignatureFrom(ca) == nil })
}
