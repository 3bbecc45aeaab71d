package privacy

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/iam"
	"github.com/steward-mdm/steward/internal/privacy/keys"
	"github.com/steward-mdm/steward/internal/store"
)

// CertificateKind is the document kind deletion certificates are signed as.
const CertificateKind = "deletion-certificate"

// Certificate records one erasure: what, when, who asked, which keys were
// destroyed. It is signed with the audit key, so anyone holding the audit
// public key can check it (steward privacy verify-certificate).
type Certificate struct {
	Type          string         `json:"type"` // "steward.deletion-certificate"
	Version       int            `json:"version"`
	ID            string         `json:"id"`
	TenantID      string         `json:"tenant_id"`
	Scope         string         `json:"scope"` // "subject" or "device"
	SubjectID     string         `json:"subject_id,omitempty"`
	Pseudonym     string         `json:"pseudonym,omitempty"`
	DeviceIDs     []string       `json:"device_ids,omitempty"`
	RequestedBy   string         `json:"requested_by"`
	Reason        string         `json:"reason"`
	ErasedAt      time.Time      `json:"erased_at"`
	KeysDestroyed []string       `json:"keys_destroyed"`
	RowsRemoved   map[string]int `json:"rows_removed"`
	SigningKeyID  string         `json:"signing_key_id"`
	Note          string         `json:"note,omitempty"`
}

// SignedCertificate is a certificate with its signature, as handed out.
// The certificate travels as the exact signed text (a JSON document inside
// a JSON string), so re-encoding or pretty-printing can never change it.
type SignedCertificate struct {
	Certificate string `json:"certificate"`
	Signature   []byte `json:"signature"`
}

// VerifyCertificate checks a signed certificate against the audit public key
// and returns its contents.
func VerifyCertificate(pub ed25519.PublicKey, sc SignedCertificate) (Certificate, error) {
	var c Certificate
	if !audit.VerifyDocument(pub, CertificateKind, []byte(sc.Certificate), sc.Signature) {
		return c, apperr.Invalid("the certificate's signature does not verify with this key")
	}
	if err := json.Unmarshal([]byte(sc.Certificate), &c); err != nil {
		return c, apperr.Invalid("the certificate does not decode: %v", err)
	}
	return c, nil
}

// eraseDevice destroys a device's data key and its inventory, and returns
// the destroyed key ID and rows removed. departing records that the device
// leaves management with it, which a restore re-applies (ReconcileErasures).
func (s *Service) eraseDevice(ctx context.Context, q store.Queries, d store.Device, rows map[string]int, departing bool) (string, error) {
	n, err := q.Inventory().DeleteDevice(ctx, d.TenantID, d.ID)
	if err != nil {
		return "", err
	}
	rows["inventory"] += n
	if n, err = q.Reveals().DeleteForDevice(ctx, d.TenantID, d.ID); err != nil {
		return "", err
	}
	rows["reveals"] += n
	if err := s.deviceErased(ctx, q, d, rows); err != nil {
		return "", err
	}
	k, err := q.Keys().DataKeyByOwner(ctx, d.TenantID, keys.DeviceOwner(d.ID))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	why := ""
	if departing {
		why = store.KeyDestroyedForDeparture
	}
	if !k.DestroyedAt.IsZero() {
		// Destroyed already, at its person's erasure: a departure since is
		// recorded on it all the same, for a restore to re-apply.
		if departing && k.DestroyedFor != why {
			return "", s.vault.Destroy(ctx, q, d.TenantID, k.ID, why)
		}
		return "", nil
	}
	return k.ID, s.vault.Destroy(ctx, q, d.TenantID, k.ID, why)
}

// StartDeviceOver erases what device d reported while it stays managed,
// for a record another device takes over (an enrolment retried from
// another device, perhaps another person's): its inventory with history,
// reveals, what the adapters keep of its people, its projection (model, OS
// version, rule facts) and identifier indexes. Its key is destroyed, which
// reaches backups, and a new one made at once: a live device whose only
// key is destroyed would be taken for an erased one after a restore
// (ReconcileErasures). The caller stores the returned device.
func (s *Service) StartDeviceOver(ctx context.Context, q store.Queries, d store.Device) (store.Device, error) {
	if _, err := s.eraseDevice(ctx, q, d, map[string]int{}, false); err != nil {
		return d, err
	}
	var err error
	if d.KeyID, err = s.vault.EnsureDataKey(ctx, q, d.TenantID, keys.DeviceOwner(d.ID), d.SubjectID); err != nil {
		return d, err
	}
	d.SerialIndex, d.UDIDIndex = nil, nil
	return clearProjection(ctx, q, d)
}

// clearProjection empties what device d's row derives from its reports
// (model, OS version, rule facts), once the reports are erased. The caller
// stores the returned device.
func clearProjection(ctx context.Context, q store.Queries, d store.Device) (store.Device, error) {
	if err := q.ManagedDevices().SetProjection(ctx, store.DeviceProjection{TenantID: d.TenantID, DeviceID: d.ID, Facts: []byte("{}")}); err != nil {
		return d, err
	}
	d.OSVersion, d.Model = "", ""
	return d, nil
}

// EraseSubject carries out a GDPR Art 17 erasure: the person's key and the
// keys of their devices are destroyed (crypto-shredding, which reaches
// backups), their inventory, access record, notifications and reveals are
// deleted, and only the pseudonymous ID stays for the audit trail. Their
// personally owned devices are deprovisioned; corporate and shared devices
// are unassigned and start over with a new key.
func (s *Service) EraseSubject(ctx context.Context, tenantID, subjectID, reason string, actor iam.Actor) (SignedCertificate, error) {
	reason, err := ValidateReason(reason)
	if err != nil {
		return SignedCertificate{}, err
	}
	var out SignedCertificate
	err = s.st.Tx(ctx, func(q store.Queries) error {
		sub, err := q.Subjects().Lock(ctx, tenantID, subjectID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("person")
		}
		if err != nil {
			return err
		}
		if sub.State == store.SubjectErased {
			return apperr.Conflict("this person was already erased on %s", sub.ErasedAt.Format(time.RFC3339))
		}
		out, err = s.eraseSubjectTx(ctx, q, sub, reason, actor, "")
		return err
	})
	return out, err
}

func (s *Service) eraseSubjectTx(ctx context.Context, q store.Queries, sub store.Subject, reason string, actor iam.Actor, note string) (SignedCertificate, error) {
	now := s.clock()
	rows := map[string]int{}
	c := Certificate{Type: "steward.deletion-certificate", Version: 1, ID: store.NewID(), TenantID: sub.TenantID,
		Scope: "subject", SubjectID: sub.ID, Pseudonym: sub.Pseudonym, RequestedBy: actor.Ref(), Reason: reason,
		ErasedAt: now, KeysDestroyed: []string{}, SigningKeyID: s.signer.KeyID(), Note: note}
	// First, while the devices still name the person: their access record,
	// notifications and the reveals of their devices.
	removed, err := q.SubjectData().DeleteForSubject(ctx, sub.TenantID, sub.ID)
	if err != nil {
		return SignedCertificate{}, err
	}
	for table, n := range removed {
		rows[table] += n
	}
	devices, err := allDevices(ctx, q, sub.TenantID, store.DeviceFilter{SubjectID: sub.ID})
	if err != nil {
		return SignedCertificate{}, err
	}
	for _, d := range devices {
		if d, err = q.Devices().Lock(ctx, d.TenantID, d.ID); err != nil {
			return SignedCertificate{}, err
		}
		leaves := Ownership(d.Ownership).PersonallyOwned() && !d.Gone()
		keyID, err := s.eraseDevice(ctx, q, d, rows, leaves)
		if err != nil {
			return SignedCertificate{}, err
		}
		if Ownership(d.Ownership).PersonallyOwned() {
			// The person's own device keeps nothing derived from what it reported.
			if d, err = clearProjection(ctx, q, d); err != nil {
				return SignedCertificate{}, err
			}
		}
		if keyID != "" {
			c.KeysDestroyed = append(c.KeysDestroyed, keyID)
		}
		c.DeviceIDs = append(c.DeviceIDs, d.ID)
		d.SubjectID, d.UpdatedAt = "", now
		serialIndex := d.SerialIndex
		if leaves {
			d.State, d.DeprovisionedAt = store.DeviceDeprovisioned, now
			d.SerialIndex, d.UDIDIndex = nil, nil
		}
		if err := q.Devices().Update(ctx, d); err != nil {
			return SignedCertificate{}, err
		}
		if leaves {
			if err := s.deviceLeft(ctx, q, d, serialIndex); err != nil {
				return SignedCertificate{}, err
			}
		}
	}
	if err := s.subjectErased(ctx, q, sub, rows); err != nil {
		return SignedCertificate{}, err
	}
	if k, err := q.Keys().DataKeyByOwner(ctx, sub.TenantID, keys.SubjectOwner(sub.ID)); err == nil && k.DestroyedAt.IsZero() {
		if err := s.vault.Destroy(ctx, q, sub.TenantID, k.ID, ""); err != nil {
			return SignedCertificate{}, err
		}
		c.KeysDestroyed = append(c.KeysDestroyed, k.ID)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return SignedCertificate{}, err
	}
	if n, err := q.PortalTokens().RevokeForSubject(ctx, sub.TenantID, sub.ID, now); err != nil {
		return SignedCertificate{}, err
	} else if n > 0 {
		rows["portal_tokens_revoked"] = n
	}
	sub.EmailIndex, sub.AppleIDIndex, sub.Profile, sub.State, sub.ErasedAt, sub.UpdatedAt = nil, nil, nil, store.SubjectErased, now, now
	if err := q.Subjects().Update(ctx, sub); err != nil {
		return SignedCertificate{}, err
	}
	rows["subject_profile"] = 1
	c.RowsRemoved = rows
	return s.issueCertificate(ctx, q, c, actor, "privacy.erase", "subject", sub.ID)
}

// DeprovisionDevice erases a device's personal data the same way: its key is
// destroyed and its inventory deleted; the device row stays, deprovisioned,
// until retention removes it.
func (s *Service) DeprovisionDevice(ctx context.Context, tenantID, deviceID, reason string, actor iam.Actor) (SignedCertificate, error) {
	reason, err := ValidateReason(reason)
	if err != nil {
		return SignedCertificate{}, err
	}
	var out SignedCertificate
	err = s.st.Tx(ctx, func(q store.Queries) error {
		out, err = s.deprovisionTx(ctx, q, tenantID, deviceID, reason, actor, "", store.DeviceDeprovisioned)
		return err
	})
	return out, err
}

// DeprovisionUnenrolled is DeprovisionDevice for one admin's request,
// which may not take an enrolled device: that leaves by the retire or
// delete action, which a second admin approves. The state is judged under
// the device's lock, so a device whose enrolment completes meanwhile is
// not deprovisioned by one admin.
func (s *Service) DeprovisionUnenrolled(ctx context.Context, tenantID, deviceID, reason string, actor iam.Actor) (SignedCertificate, error) {
	reason, err := ValidateReason(reason)
	if err != nil {
		return SignedCertificate{}, err
	}
	var out SignedCertificate
	err = s.st.Tx(ctx, func(q store.Queries) error {
		d, err := q.Devices().Lock(ctx, tenantID, deviceID)
		if errors.Is(err, store.ErrNotFound) {
			return apperr.NotFound("device")
		}
		if err != nil {
			return err
		}
		if d.State == store.DeviceEnrolled {
			return apperr.Conflict("an enrolled device leaves management by the retire or delete action, which a second admin approves")
		}
		out, err = s.deprovisionTx(ctx, q, tenantID, deviceID, reason, actor, "", store.DeviceDeprovisioned)
		return err
	})
	return out, err
}

// DeprovisionIn is DeprovisionDevice inside the caller's transaction (a
// device checking out).
func (s *Service) DeprovisionIn(ctx context.Context, q store.Queries, tenantID, deviceID, reason string, actor iam.Actor) (SignedCertificate, error) {
	return s.deprovisionTx(ctx, q, tenantID, deviceID, reason, actor, "", store.DeviceDeprovisioned)
}

// LeaveIn is DeprovisionIn for a device that left management through a
// remote action: state is store.DeviceRetired (selective wipe done) or
// store.DeviceWiped. Its personal data goes exactly as on deprovisioning.
func (s *Service) LeaveIn(ctx context.Context, q store.Queries, tenantID, deviceID, state, reason string, actor iam.Actor) (SignedCertificate, error) {
	if state != store.DeviceRetired && state != store.DeviceWiped {
		return SignedCertificate{}, fmt.Errorf("privacy: a device cannot leave management as %q", state)
	}
	return s.deprovisionTx(ctx, q, tenantID, deviceID, reason, actor, "", state)
}

// TellToLeaveIn erases device deviceID's personal data and tells it to
// remove its management profile (the TellToLeave hooks) inside the
// caller's transaction, as a withdrawn consent does: it is leaving until
// its answer or CheckOut retires it, or deprovisioned at once when nothing
// could tell it. For a device that turned out to be of a kind Steward does
// not manage; note explains that on the deletion certificate.
func (s *Service) TellToLeaveIn(ctx context.Context, q store.Queries, tenantID, deviceID, reason string, actor iam.Actor, note string) (SignedCertificate, error) {
	return s.deprovisionTx(ctx, q, tenantID, deviceID, reason, actor, note, store.DeviceLeaving)
}

func (s *Service) deprovisionTx(ctx context.Context, q store.Queries, tenantID, deviceID, reason string, actor iam.Actor, note, state string) (SignedCertificate, error) {
	d, err := q.Devices().Lock(ctx, tenantID, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return SignedCertificate{}, apperr.NotFound("device")
	}
	if err != nil {
		return SignedCertificate{}, err
	}
	// A leaving device may still leave for good: its answer or CheckOut
	// retires it, or an admin deprovisions it. Its data went already, and
	// erasing again finds nothing: the certificate records the departure.
	if d.Left() || (d.State == store.DeviceLeaving && state == store.DeviceLeaving) {
		return SignedCertificate{}, apperr.Conflict("this device was already deprovisioned")
	}
	now := s.clock()
	rows := map[string]int{}
	keyID, err := s.eraseDevice(ctx, q, d, rows, true)
	if err != nil {
		return SignedCertificate{}, err
	}
	if Ownership(d.Ownership).PersonallyOwned() {
		// The person's own device keeps nothing derived from what it
		// reported; an organisation's keeps its model for the asset record.
		if d, err = clearProjection(ctx, q, d); err != nil {
			return SignedCertificate{}, err
		}
	}
	if state == store.DeviceLeaving {
		if state, err = s.tellToLeave(ctx, q, d, reason, actor); err != nil {
			return SignedCertificate{}, err
		}
	}
	c := Certificate{Type: "steward.deletion-certificate", Version: 1, ID: store.NewID(), TenantID: tenantID,
		Scope: "device", SubjectID: d.SubjectID, DeviceIDs: []string{d.ID}, RequestedBy: actor.Ref(),
		Reason: reason, ErasedAt: now, KeysDestroyed: []string{}, RowsRemoved: rows, SigningKeyID: s.signer.KeyID(), Note: note}
	if keyID != "" {
		c.KeysDestroyed = append(c.KeysDestroyed, keyID)
	}
	if d.State == store.DeviceLeaving && c.Note == "" {
		c.Note = "The device's personal data was erased when consent for it was withdrawn; this records that it has now left management."
	}
	serialIndex := d.SerialIndex
	d.State, d.UpdatedAt = state, now
	d.SerialIndex, d.UDIDIndex = nil, nil
	if state == store.DeviceLeaving {
		// Not deprovisioned yet: retention keeps the row until it has left.
		if err := q.Devices().Update(ctx, d); err != nil {
			return SignedCertificate{}, err
		}
		return s.issueCertificate(ctx, q, c, actor, "device.leaving", "device", d.ID)
	}
	d.DeprovisionedAt = now
	if err := q.Devices().Update(ctx, d); err != nil {
		return SignedCertificate{}, err
	}
	if err := s.deviceLeft(ctx, q, d, serialIndex); err != nil {
		return SignedCertificate{}, err
	}
	if err := personUnmanagedIfLast(ctx, q, d, now); err != nil {
		return SignedCertificate{}, err
	}
	return s.issueCertificate(ctx, q, c, actor, "device.deprovision", "device", d.ID)
}

// tellToLeave asks the protocol adapters to tell d to remove its
// management profile, and returns the state d takes: leaving when one
// queued that removal, deprovisioned when none could (a device of another
// protocol, or one that never finished enrolling).
func (s *Service) tellToLeave(ctx context.Context, q store.Queries, d store.Device, reason string, actor iam.Actor) (string, error) {
	for _, tell := range s.tellOff {
		told, err := tell(ctx, q, d, reason, actor)
		if err != nil {
			return "", err
		}
		if told {
			return store.DeviceLeaving, nil
		}
	}
	return store.DeviceDeprovisioned, nil
}

func (s *Service) deviceErased(ctx context.Context, q store.Queries, d store.Device, rows map[string]int) error {
	for _, erased := range s.erased {
		if err := erased(ctx, q, d, rows); err != nil {
			return err
		}
	}
	return nil
}

// subjectErased runs the SubjectErasedHooks with sub's profile, read before
// its key goes. A profile that cannot be read (its key destroyed or lost
// before a restore) names no identifiers to forget.
func (s *Service) subjectErased(ctx context.Context, q store.Queries, sub store.Subject, rows map[string]int) error {
	if len(s.forget) == 0 {
		return nil
	}
	p, err := s.OpenProfile(ctx, q, sub)
	if errors.Is(err, keys.ErrKeyDestroyed) || errors.Is(err, keys.ErrKeyMissing) || errors.Is(err, keys.ErrCorrupt) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, forget := range s.forget {
		if err := forget(ctx, q, sub, p, rows); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) deviceLeft(ctx context.Context, q store.Queries, d store.Device, serialIndex []byte) error {
	for _, departing := range s.departing {
		if err := departing(ctx, q, d, serialIndex); err != nil {
			return err
		}
	}
	for _, left := range s.left {
		if err := left(ctx, q, d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) issueCertificate(ctx context.Context, q store.Queries, c Certificate, actor iam.Actor, action, targetType, targetID string) (SignedCertificate, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return SignedCertificate{}, err
	}
	sc := SignedCertificate{Certificate: string(doc), Signature: s.signer.SignDocument(CertificateKind, doc)}
	if err := q.Erasures().Create(ctx, store.Erasure{ID: c.ID, TenantID: c.TenantID, SubjectID: c.SubjectID,
		DeviceID: first(c.DeviceIDs, c.Scope == "device"), Certificate: doc, Signature: sc.Signature, At: c.ErasedAt}); err != nil {
		return SignedCertificate{}, err
	}
	e := actor.Entry(c.TenantID, action, targetType, targetID, audit.OutcomeSuccess)
	e.Reason = c.Reason
	e.Details = map[string]any{"certificate": c.ID, "keys_destroyed": len(c.KeysDestroyed), "rows_removed": c.RowsRemoved}
	if action == "device.leaving" {
		e.Details["management_profile_removal"] = "queued for the device's next check-in"
	}
	return sc, audit.Append(ctx, q, e)
}

func first(ids []string, want bool) string {
	if !want || len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// Certificate returns a stored deletion certificate.
func (s *Service) Certificate(ctx context.Context, tenantID, id string) (SignedCertificate, error) {
	e, err := s.st.Read().Erasures().Get(ctx, tenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return SignedCertificate{}, apperr.NotFound("certificate")
	}
	return SignedCertificate{Certificate: string(e.Certificate), Signature: e.Signature}, err
}

func allDevices(ctx context.Context, q store.Queries, tenantID string, f store.DeviceFilter) ([]store.Device, error) {
	var out []store.Device
	f.Page = store.Page{Limit: 1000}
	for {
		batch, err := q.Devices().List(ctx, tenantID, f)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		if len(batch) < f.Page.Limit {
			return out, nil
		}
		f.Page.After = batch[len(batch)-1].ID
	}
}

// SubjectStatus tells whether Steward can still read a person's data.
func (s *Service) SubjectStatus(ctx context.Context, q store.Queries, sub store.Subject) string {
	if sub.State == store.SubjectErased {
		return "erased"
	}
	k, err := q.Keys().DataKeyByOwner(ctx, sub.TenantID, keys.SubjectOwner(sub.ID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "key_missing"
	case err != nil:
		return "unknown"
	case !k.DestroyedAt.IsZero() || k.ID != sub.KeyID:
		return "erased"
	}
	return "active"
}

// ReconcileErasures finishes erasures that a restored backup undid. The key
// vault is never in a backup, so a person or device whose key was destroyed
// after the backup was taken comes back from it with ciphertexts nobody can
// read. Steward completes their erasure (with a certificate saying so) and
// reports them as erased. It runs after every restore and at start-up, and
// returns how many people and devices it finished.
func (s *Service) ReconcileErasures(ctx context.Context) (int, error) {
	tenants, err := TenantIDs(ctx, s.st.Read())
	if err != nil {
		return 0, err
	}
	const note = "The key had been destroyed before a backup was restored; the restored copy of the data was unreadable and has been removed."
	done := 0
	for _, t := range tenants {
		for page := (store.Page{Limit: 500}); ; {
			subs, err := s.st.Read().Subjects().List(ctx, t, page)
			if err != nil {
				return done, err
			}
			for _, sub := range subs {
				if sub.State != store.SubjectActive || s.SubjectStatus(ctx, s.st.Read(), sub) != "erased" {
					continue
				}
				if err := s.st.Tx(ctx, func(q store.Queries) error {
					_, err := s.eraseSubjectTx(ctx, q, sub, "erasure re-applied after a backup restore", iam.SystemActor, note)
					return err
				}); err != nil {
					return done, err
				}
				done++
			}
			if len(subs) < page.Limit {
				break
			}
			page.After = subs[len(subs)-1].ID
		}
		devices, err := allDevices(ctx, s.st.Read(), t, store.DeviceFilter{})
		if err != nil {
			return done, err
		}
		for _, d := range devices {
			if d.Gone() {
				continue
			}
			k, err := s.st.Read().Keys().DataKeyByOwner(ctx, t, keys.DeviceOwner(d.ID))
			if err != nil || k.DestroyedAt.IsZero() {
				continue // a live key (or none yet): nothing was erased
			}
			// A device that left after the backup (every personal one whose
			// key went: its person's erasure retires it too) leaves again. A
			// corporate or shared one that only lost its person keeps its
			// management: its unreadable values go, and its next report
			// brings a new key.
			changed := false
			err = s.st.Tx(ctx, func(q store.Queries) error {
				if Ownership(d.Ownership).PersonallyOwned() || k.DestroyedFor == store.KeyDestroyedForDeparture {
					_, err := s.deprovisionTx(ctx, q, t, d.ID, "deprovisioning re-applied after a backup restore", iam.SystemActor, note, store.DeviceDeprovisioned)
					changed = err == nil
					return err
				}
				n, err := q.Inventory().DeleteByKey(ctx, t, k.ID)
				if err != nil {
					return err
				}
				changed = n > 0
				// What adapters keep of its people, restored with the backup.
				return s.deviceErased(ctx, q, d, map[string]int{})
			})
			if err != nil {
				return done, err
			}
			if changed {
				done++
			}
		}
	}
	return done, nil
}

// TenantIDs lists every tenant, parents before their customers.
func TenantIDs(ctx context.Context, q store.Queries) ([]string, error) {
	var out []string
	var walk func(parent string) error
	walk = func(parent string) error {
		page := store.Page{Limit: 1000}
		for {
			ts, err := q.Tenants().ListChildren(ctx, parent, page)
			if err != nil {
				return err
			}
			for _, t := range ts {
				out = append(out, t.ID)
				if err := walk(t.ID); err != nil {
					return err
				}
			}
			if len(ts) < page.Limit {
				return nil
			}
			page.After = ts[len(ts)-1].ID
		}
	}
	return out, walk("")
}
