package payloads

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
)

func exchangeDefinition(exchange map[string]any) map[string]any {
	return map[string]any{"name": "Mail", "identifier": "com.example.mail", "payloads": []any{
		map[string]any{"type": "exchange", "exchange": exchange}}}
}

// An MDM install on iOS cannot ask for the Exchange user name (UserName,
// com.apple.eas.account.yaml), so the account would not work.
func TestExchangeNeedsUsername(t *testing.T) {
	for name, username := range map[string]any{"missing": nil, "blank": "  "} {
		exchange := map[string]any{"email_address": "a@example.com", "host": "eas.example.com"}
		if username != nil {
			exchange["username"] = username
		}
		_, err := ParseDefinition(mustJSON(t, exchangeDefinition(exchange)))
		if e := apperr.As(err); e == nil || e.Kind != apperr.KindInvalid || e.Details["field"] != "payloads[0].exchange.username" ||
			!strings.Contains(err.Error(), "is required") {
			t.Errorf("%s user name: %v, want invalid_request on payloads[0].exchange.username", name, err)
		}
	}
}

// 0 means no limit, and Apple's default when the key is absent is 7 days.
func TestExchangePastDaysToSyncZeroIsWritten(t *testing.T) {
	cases := []struct {
		name    string
		days    any
		want    uint64
		present bool
	}{
		{"no limit", 0, 0, true},
		{"two weeks", 14, 14, true},
		{"unset", nil, 0, false},
	}
	for _, c := range cases {
		exchange := map[string]any{"email_address": "a@example.com", "host": "eas.example.com", "username": "a"}
		if c.days != nil {
			exchange["past_days_to_sync"] = c.days
		}
		d := mustParse(t, exchangeDefinition(exchange))
		out, err := d.Build()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, present := payloadsOf(t, decodeBuilt(t, out))[0]["MailNumberOfPastDaysToSync"]
		if present != c.present || present && got != c.want {
			t.Errorf("%s: MailNumberOfPastDaysToSync = %v (present %v), want %d (present %v)", c.name, got, present, c.want, c.present)
		}
		var public map[string]any // the stored definition keeps the choice
		if err := json.Unmarshal(mustJSON(t, d.Redacted()), &public); err != nil {
			t.Fatal(err)
		}
		stored, present := public["payloads"].([]any)[0].(map[string]any)["exchange"].(map[string]any)["past_days_to_sync"]
		if present != c.present || present && stored != float64(c.want) {
			t.Errorf("%s: stored past_days_to_sync = %v (present %v)", c.name, stored, present)
		}
	}
}

func mailDefinition(incomingPassword any, sameAsIncoming bool) map[string]any {
	incoming := map[string]any{"host": "imap.example.com", "username": "a"}
	if incomingPassword != nil {
		incoming["password"] = incomingPassword
	}
	return map[string]any{"name": "Mail", "identifier": "com.example.mail", "payloads": []any{
		map[string]any{"type": "mail", "mail": map[string]any{"email_address": "a@example.com", "incoming": incoming,
			"outgoing": map[string]any{"host": "smtp.example.com", "username": "a", "same_as_incoming": sameAsIncoming}}}}}
}

// An MDM install on iOS does not honour OutgoingPasswordSameAsIncomingPassword
// (com.apple.mail.managed.yaml): the SMTP server gets the password itself.
func TestMailSameAsIncomingWritesTheOutgoingPassword(t *testing.T) {
	cases := []struct {
		name     string
		password any
		same     bool
		want     string // "" when no OutgoingPassword is written
	}{
		{"same as incoming", "imap-pass", true, "imap-pass"},
		{"same, but the device asks for the incoming one", nil, true, ""},
		{"separate, none given", "imap-pass", false, ""},
	}
	for _, c := range cases {
		out, err := mustParse(t, mailDefinition(c.password, c.same)).Build()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		mail := payloadsOf(t, decodeBuilt(t, out))[0]
		got, present := mail["OutgoingPassword"]
		if present != (c.want != "") || present && got != c.want {
			t.Errorf("%s: OutgoingPassword = %v (present %v), want %q", c.name, got, present, c.want)
		}
		if mail["OutgoingPasswordSameAsIncomingPassword"] != c.same {
			t.Errorf("%s: OutgoingPasswordSameAsIncomingPassword = %v", c.name, mail["OutgoingPasswordSameAsIncomingPassword"])
		}
	}
}

// The copy is not a second stored secret, and the incoming password is
// kept only while it goes to the same servers: turning same_as_incoming on
// would otherwise send it to an SMTP server of the editor's choosing.
func TestMailSameAsIncomingKeepsOneSecret(t *testing.T) {
	stored := mustParse(t, mailDefinition("imap-pass", false))
	_, secrets := mustParse(t, mailDefinition("imap-pass", true)).SplitSecrets()
	if len(secrets) != 1 || string(secrets["payloads[0].mail.incoming.password"]) != "imap-pass" {
		t.Errorf("stored secrets %v, want the incoming password alone", secretKeys(secrets))
	}
	var tree map[string]any
	if err := json.Unmarshal(mustJSON(t, stored.Redacted()), &tree); err != nil {
		t.Fatal(err)
	}
	setPath(tree, []any{"payloads", 0, "mail", "outgoing", "same_as_incoming"}, true)
	_, err := MergeSecrets(mustParse(t, tree), stored)
	if !apperr.IsKind(err, apperr.KindInvalid) || !strings.Contains(err.Error(), "payloads[0].mail.incoming.password") {
		t.Fatalf("same_as_incoming turned on with the stored password kept: err = %v", err)
	}
}

func secretKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
