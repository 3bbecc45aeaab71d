package payloads

import (
	"strings"
	"testing"
)

func TestSharedIPadUnavailable(t *testing.T) {
	cases := []struct {
		payload map[string]any
		want    string // "" when a Shared iPad takes it
	}{
		{map[string]any{"type": "passcode", "passcode": map[string]any{"min_length": 6}}, "com.apple.mobiledevice.passwordpolicy"},
		{map[string]any{"type": "webclip", "webclip": map[string]any{"label": "Intranet", "url": "https://intranet.example.com"}}, "com.apple.webClip.managed"},
		{map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_cloud_document_sync": false}}, "allowCloudDocumentSync"},
		{map[string]any{"type": "restrictions", "restrictions": map[string]any{"allow_camera": false}}, ""},
		{map[string]any{"type": "wifi", "wifi": map[string]any{"ssid": "School", "security": "wpa2_personal", "password": "correct horse battery"}}, ""},
	}
	for i, c := range cases {
		def := mustParse(t, map[string]any{"name": "P", "identifier": "com.example.p", "payloads": []any{c.payload}})
		built, err := def.Build()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		why, err := SharedIPadUnavailable(built)
		if err != nil || (c.want == "") != (why == "") || !strings.Contains(why, c.want) {
			t.Errorf("case %d (%v): SharedIPadUnavailable = %q, %v; want %q", i, c.payload["type"], why, err, c.want)
		}
	}
}
