package payloads

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretJSON(t *testing.T) {
	cases := []struct {
		input        string
		binary       bool
		wantValue    string
		wantWithheld bool
		wantErr      bool
	}{
		{input: `"hunter22"`, wantValue: "hunter22"},
		{input: `{"set":true}`, wantWithheld: true},
		{input: `{"set":false}`},
		{input: `null`},
		{input: `""`},
		{input: `42`, wantErr: true},
		{input: `{"set":true,"value":"x"}`, wantErr: true},
		{input: `"aGk="`, binary: true, wantValue: "hi"},
		{input: `"not base64!"`, binary: true, wantErr: true},
		{input: `{"set":true}`, binary: true, wantWithheld: true},
	}
	for _, c := range cases {
		var s Secret
		var err error
		if c.binary {
			var d SecretData
			err = json.Unmarshal([]byte(c.input), &d)
			s = d.Secret
		} else {
			err = json.Unmarshal([]byte(c.input), &s)
		}
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, want error %v", c.input, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if string(s.Reveal()) != c.wantValue || s.Withheld() != c.wantWithheld {
			t.Errorf("%s: value %q withheld %v, want %q %v", c.input, s.Reveal(), s.Withheld(), c.wantValue, c.wantWithheld)
		}
		out, _ := json.Marshal(s)
		want := "null"
		if s.IsSet() {
			want = `{"set":true}`
		}
		if string(out) != want {
			t.Errorf("%s: marshals to %s, want %s", c.input, out, want)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := NewSecret("hunter22")
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "payload", &Exchange{Password: s})
	for _, got := range []string{formatAll(s), formatAll(&WiFi{Password: s}), logs.String()} {
		if strings.Contains(got, "hunter22") {
			t.Errorf("secret leaked: %s", got)
		}
	}
}
