package payloads

import (
	"bytes"
	"fmt"

	"github.com/steward-mdm/steward/internal/apperr"
)

// secretRef is one secret field of a definition under its stable key,
// "payloads[<index>].<type>.<field>", e.g. "payloads[1].wifi.password".
type secretRef struct {
	key    string
	index  int
	secret *Secret
	anchor string
}

// secretRefs lists every secret field of d (set or not), pointing into d.
func (d *Definition) secretRefs() []secretRef {
	var refs []secretRef
	for i := range d.Payloads {
		b := d.Payloads[i].body()
		if b == nil {
			continue
		}
		for _, s := range b.secrets() {
			refs = append(refs, secretRef{
				key:    fmt.Sprintf("payloads[%d].%s.%s", i, d.Payloads[i].Type, s.name),
				index:  i,
				secret: s.secret,
				anchor: s.anchor,
			})
		}
	}
	return refs
}

// clone copies d deeply enough that changing secrets in the copy leaves d
// alone.
func (d Definition) clone() Definition {
	c := d
	c.Payloads = make([]Payload, len(d.Payloads))
	for i, p := range d.Payloads {
		c.Payloads[i] = p.clone()
	}
	return c
}

func (p Payload) clone() Payload {
	c := p
	if p.WiFi != nil {
		w := *p.WiFi
		if w.EAP != nil {
			eap := *w.EAP
			w.EAP = &eap
		}
		c.WiFi = &w
	}
	if p.VPN != nil {
		v := *p.VPN
		c.VPN = &v
	}
	if p.Exchange != nil {
		e := *p.Exchange
		c.Exchange = &e
	}
	if p.Mail != nil {
		m := *p.Mail
		c.Mail = &m
	}
	if p.SCEP != nil {
		s := *p.SCEP
		c.SCEP = &s
	}
	if p.PKCS12 != nil {
		k := *p.PKCS12
		c.PKCS12 = &k
	}
	// Passcode, Restrictions and WebClip hold no secrets and are never
	// changed through the copy, so sharing them is safe.
	return c
}

// SplitSecrets separates d's secret values for encryption at rest. public is
// d with every set secret withheld (it encodes to JSON with {"set":true}
// markers and no plaintext); secrets maps each key such as
// "payloads[1].wifi.password" to a copy of its value. Secrets already
// withheld in d are not in the map. d itself is not changed.
func (d Definition) SplitSecrets() (public Definition, secrets map[string][]byte) {
	public = d.clone()
	secrets = map[string][]byte{}
	for _, ref := range public.secretRefs() {
		if v := ref.secret.Reveal(); len(v) > 0 {
			secrets[ref.key] = bytes.Clone(v)
		}
		*ref.secret = ref.secret.withheldCopy()
	}
	return public, secrets
}

// WithSecrets returns d with the withheld secrets filled from secrets, the
// map SplitSecrets produced. It returns an apperr invalid_request error when
// a withheld secret has no value in the map or the map holds a key d has no
// secret field for (the definition and its secrets do not belong together).
func (d Definition) WithSecrets(secrets map[string][]byte) (Definition, error) {
	out := d.clone()
	used := 0
	for _, ref := range out.secretRefs() {
		v, ok := secrets[ref.key]
		if !ok {
			if ref.secret.Withheld() {
				return Definition{}, apperr.Invalid("%s: the stored secret is missing; enter it again", ref.key).With("field", ref.key)
			}
			continue
		}
		used++
		if !ref.secret.Withheld() {
			continue // a value given in d is newer than the stored one
		}
		if len(v) == 0 {
			return Definition{}, apperr.Invalid("%s: the stored secret is empty; enter it again", ref.key).With("field", ref.key)
		}
		*ref.secret = Secret{value: bytes.Clone(v), binary: ref.secret.binary}
	}
	if used != len(secrets) {
		return Definition{}, apperr.Invalid("stored secrets do not match the profile's secret fields; re-enter the profile's secrets")
	}
	return out, nil
}

// Redacted returns d for API output: every set secret becomes withheld, so
// JSON shows {"set":true} in its place. Sending that marker back on update
// means "keep the stored secret"; see MergeSecrets.
func (d Definition) Redacted() Definition {
	public, _ := d.SplitSecrets()
	return public
}

// MergeSecrets completes an update. updated is the definition an admin sent
// (usually an edited copy of a Redacted one); stored is the current
// definition with its secrets present. For each secret of updated:
//
//   - a new value replaces the stored one;
//   - the marker {"set":true} keeps the stored value at the same key;
//   - an absent or null secret removes it.
//
// A kept secret is taken only from the stored payload at the same position
// with the same type and id, and only while the fields that say where the
// secret goes (SSID, server host, user name, SCEP URL) are unchanged. So a
// reordered payload cannot pick up another's secret, and an admin who cannot
// read a secret cannot redirect it to a server they control. Otherwise, or
// when stored has no value to keep, MergeSecrets returns an apperr
// invalid_request error asking for the secret. A PKCS#12 file and its
// password are kept together or not at all (see keepIdentitiesWhole). The
// result is validated.
func MergeSecrets(updated, stored Definition) (Definition, error) {
	if err := keepIdentitiesWhole(updated, stored); err != nil {
		return Definition{}, err
	}
	out := updated.clone()
	storedRefs := map[string]secretRef{}
	for _, ref := range stored.secretRefs() {
		storedRefs[ref.key] = ref
	}
	for _, ref := range out.secretRefs() {
		if !ref.secret.Withheld() {
			continue
		}
		old, ok := storedRefs[ref.key]
		if !ok || len(old.secret.Reveal()) == 0 || old.anchor != ref.anchor ||
			out.Payloads[ref.index].ID != stored.Payloads[ref.index].ID {
			return Definition{}, apperr.Invalid("%s: the stored secret cannot be kept because the payload is new, moved, or now sends it to a different server or user; enter the secret", ref.key).With("field", ref.key)
		}
		*ref.secret = Secret{value: bytes.Clone(old.secret.Reveal()), binary: ref.secret.binary}
	}
	if err := out.Validate(); err != nil {
		return Definition{}, err
	}
	return out, nil
}

// keepIdentitiesWhole refuses an update that keeps half of a PKCS#12
// identity. Validation opens the file with the password, so keeping the
// stored password with a new file would tell an admin who cannot read it
// whether it opens a file of theirs, and keeping the stored file with a new
// password whether their guess is right.
func keepIdentitiesWhole(updated, stored Definition) error {
	for i, p := range updated.Payloads {
		id := p.PKCS12
		if id == nil || id.Data.Withheld() == id.Password.Withheld() {
			continue
		}
		path := fmt.Sprintf("payloads[%d].pkcs12", i)
		if id.Password.Withheld() {
			return fieldErr(path+".password", "enter the new PKCS#12 file's password; the stored password is kept only with the stored file")
		}
		if id.Password.IsZero() && i < len(stored.Payloads) && stored.Payloads[i].PKCS12 != nil &&
			stored.Payloads[i].PKCS12.Password.IsZero() {
			continue // the stored file never had a password
		}
		return fieldErr(path+".data", `the stored PKCS#12 file is kept only with its stored password: keep both ({"set":true}) or upload the file again with its password`)
	}
	return nil
}
