package payloads

import (
	"net/mail"
	"strings"
)

// Exchange configures com.apple.eas.account. SSL is always on: Steward never
// configures an account that sends credentials in clear text.
type Exchange struct {
	EmailAddress string `json:"email_address"`
	Host         string `json:"host"` // server host name, no scheme
	// Username is required: an MDM install on iOS cannot ask for it
	// (UserName, com.apple.eas.account.yaml).
	Username string `json:"username,omitempty"`
	Password Secret `json:"password,omitzero"` // empty makes the device ask
	// Certificate is the id of a scep/pkcs12 payload for certificate
	// authentication.
	Certificate string `json:"certificate,omitempty"`
	// PastDaysToSync is 0 (no limit), 1, 3, 7, 14 or 31; unset leaves
	// Apple's default, 7.
	PastDaysToSync  *int `json:"past_days_to_sync,omitempty"`
	PreventMove     bool `json:"prevent_move,omitempty"`      // keep messages in this account
	PreventAppSheet bool `json:"prevent_app_sheet,omitempty"` // only Mail may send from it
}

var easPastDays = map[int]bool{0: true, 1: true, 3: true, 7: true, 14: true, 31: true}

func (e *Exchange) validate(v *validator, path string) error {
	if err := checkEmail(path+".email_address", e.EmailAddress); err != nil {
		return err
	}
	if !isHostname(e.Host) {
		return fieldErr(path+".host", "must be the Exchange server's host name, without scheme or path")
	}
	if strings.TrimSpace(e.Username) == "" {
		return fieldErr(path+".username", "is required: an iPhone or iPad installing the account through MDM cannot ask for it "+
			"(the password may stay empty for the device to ask)")
	}
	if err := checkText(path+".username", e.Username, 256, true); err != nil {
		return err
	}
	if err := v.certificateRef(path+".certificate", e.Certificate, false); err != nil {
		return err
	}
	if e.PastDaysToSync != nil && !easPastDays[*e.PastDaysToSync] {
		return fieldErr(path+".past_days_to_sync", "must be 0 (no limit), 1, 3, 7, 14 or 31")
	}
	return nil
}

func (e *Exchange) content(b *builder) (map[string]any, error) {
	keys := map[string]any{
		"EmailAddress":    e.EmailAddress,
		"Host":            e.Host,
		"SSL":             true,
		"PreventMove":     e.PreventMove,
		"PreventAppSheet": e.PreventAppSheet,
	}
	keys["UserName"] = e.Username
	if pw := e.Password.Reveal(); len(pw) > 0 {
		keys["Password"] = string(pw)
	}
	if e.Certificate != "" {
		keys["PayloadCertificateUUID"] = b.certificateUUID(e.Certificate)
	}
	putInt(keys, "MailNumberOfPastDaysToSync", e.PastDaysToSync) // 0 included: Apple's default is 7
	return keys, nil
}

func (e *Exchange) secrets() []namedSecret {
	return []namedSecret{{"password", &e.Password, anchor(e.Host, e.Username)}}
}

// Mail configures an IMAP + SMTP com.apple.mail.managed account with SSL/TLS
// required on both servers.
type Mail struct {
	Description     string     `json:"description,omitempty"`  // EmailAccountDescription
	AccountName     string     `json:"account_name,omitempty"` // sender's full name
	EmailAddress    string     `json:"email_address"`
	Incoming        MailServer `json:"incoming"`
	Outgoing        MailServer `json:"outgoing"`
	PreventMove     bool       `json:"prevent_move,omitempty"`
	PreventAppSheet bool       `json:"prevent_app_sheet,omitempty"`
}

// MailServer is one side of a Mail account.
type MailServer struct {
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"` // default 993 (IMAP) or 587 (SMTP)
	Username string `json:"username"`
	Password Secret `json:"password,omitzero"` // empty makes the device ask
	// SameAsIncoming (outgoing only) reuses the incoming password: Build
	// writes it as the outgoing one too.
	SameAsIncoming bool `json:"same_as_incoming,omitempty"`
}

func (m *Mail) validate(_ *validator, path string) error {
	if err := checkText(path+".description", m.Description, maxNameLength, false); err != nil {
		return err
	}
	if err := checkText(path+".account_name", m.AccountName, maxNameLength, false); err != nil {
		return err
	}
	if err := checkEmail(path+".email_address", m.EmailAddress); err != nil {
		return err
	}
	if m.Incoming.SameAsIncoming {
		return fieldErr(path+".incoming.same_as_incoming", "applies only to the outgoing server")
	}
	if m.Outgoing.SameAsIncoming && m.Outgoing.Password.IsSet() {
		return fieldErr(path+".outgoing.password", "remove it or turn off same_as_incoming")
	}
	for _, s := range []struct {
		name   string
		server *MailServer
	}{{"incoming", &m.Incoming}, {"outgoing", &m.Outgoing}} {
		p := path + "." + s.name
		if !isHostname(s.server.Host) {
			return fieldErr(p+".host", "must be the mail server's host name, without scheme or port")
		}
		if s.server.Port < 0 || s.server.Port > 65535 {
			return fieldErr(p+".port", "must be between 1 and 65535")
		}
		if err := checkText(p+".username", s.server.Username, 256, true); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mail) content(*builder) (map[string]any, error) {
	in, out := m.Incoming, m.Outgoing
	if in.Port == 0 {
		in.Port = 993
	}
	if out.Port == 0 {
		out.Port = 587
	}
	keys := map[string]any{
		"EmailAccountType":                       "EmailTypeIMAP",
		"EmailAddress":                           m.EmailAddress,
		"IncomingMailServerHostName":             in.Host,
		"IncomingMailServerPortNumber":           in.Port,
		"IncomingMailServerUseSSL":               true,
		"IncomingMailServerUsername":             in.Username,
		"IncomingMailServerAuthentication":       "EmailAuthPassword",
		"OutgoingMailServerHostName":             out.Host,
		"OutgoingMailServerPortNumber":           out.Port,
		"OutgoingMailServerUseSSL":               true,
		"OutgoingMailServerUsername":             out.Username,
		"OutgoingMailServerAuthentication":       "EmailAuthPassword",
		"OutgoingPasswordSameAsIncomingPassword": out.SameAsIncoming,
		"PreventMove":                            m.PreventMove,
		"PreventAppSheet":                        m.PreventAppSheet,
	}
	if m.Description != "" {
		keys["EmailAccountDescription"] = m.Description
	}
	if m.AccountName != "" {
		keys["EmailAccountName"] = m.AccountName
	}
	if pw := in.Password.Reveal(); len(pw) > 0 {
		keys["IncomingPassword"] = string(pw)
	}
	if pw := out.Password.Reveal(); len(pw) > 0 {
		keys["OutgoingPassword"] = string(pw)
	}
	if pw := in.Password.Reveal(); out.SameAsIncoming && len(pw) > 0 {
		// An MDM install on iOS ignores OutgoingPasswordSameAsIncomingPassword
		// (com.apple.mail.managed.yaml), leaving SMTP without a password.
		// The copy is made here only: the incoming password alone is
		// stored, and secrets() ties it to the outgoing server too.
		keys["OutgoingPassword"] = string(pw)
	}
	return keys, nil
}

func (m *Mail) secrets() []namedSecret {
	incoming := anchor(m.Incoming.Host, m.Incoming.Username)
	if m.Outgoing.SameAsIncoming {
		// The device also sends the incoming password to the outgoing
		// server: moving that server must take the stored password away.
		incoming = anchor(incoming, "same-as-incoming", m.Outgoing.Host, m.Outgoing.Username)
	}
	return []namedSecret{
		{"incoming.password", &m.Incoming.Password, incoming},
		{"outgoing.password", &m.Outgoing.Password, anchor(m.Outgoing.Host, m.Outgoing.Username)},
	}
}

func checkEmail(path, s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || len(s) > 254 {
		return fieldErr(path, "must be a plain email address such as user@example.com")
	}
	return nil
}
