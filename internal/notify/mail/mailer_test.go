package mail

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const (
	testSubject = "Zustimmung erforderlich – Gerät „Laptop“ ✓"
	testText    = "Hallo Ana,\n\nbitte bestätigen Sie die neue Richtlinie.\n.a line that starts with a dot\n" +
		"A very long line that is well beyond seventy-six characters so quoted-printable must soft-wrap it: äöü.\n"
	testHTML = "<p>Hallo Ana,</p>\n<p>bitte <b>bestätigen</b> Sie die neue Richtlinie.</p>\n"
)

func newMailer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func testMessage() Message {
	return Message{
		To:      []string{"Ana Müller <ana@example.org>", "bob@example.org"},
		Subject: testSubject,
		Text:    testText,
		HTML:    testHTML,
		Headers: map[string]string{"list-unsubscribe": "<https://steward.example.com/u/abc>"},
	}
}

func TestSendDeliversMultipartOverSTARTTLS(t *testing.T) {
	be := &backend{}
	cfg := startServer(t, be, serverOptions{startTLS: true})
	if err := newMailer(t, cfg).Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	msgs, _, _ := be.snapshot()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if !got.tls || got.authd != testUser {
		t.Errorf("delivery tls=%v user=%q, want TLS and authenticated as %q", got.tls, got.authd, testUser)
	}
	if got.from != "noreply@example.com" || strings.Join(got.to, ",") != "ana@example.org,bob@example.org" {
		t.Errorf("envelope from=%q to=%v", got.from, got.to)
	}

	parsed, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, got.data)
	}
	checkCommonHeaders(t, parsed.Header)

	mediaType, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", parsed.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(parsed.Body, params["boundary"])
	for _, want := range []struct{ mediaType, body string }{
		{"text/plain", testText},
		{"text/html", testHTML},
	} {
		part, err := parts.NextRawPart()
		if err != nil {
			t.Fatalf("reading %s part: %v", want.mediaType, err)
		}
		checkQuotedPrintablePart(t, part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, want.mediaType, want.body)
	}
	if _, err := parts.NextRawPart(); err != io.EOF {
		t.Errorf("expected exactly two parts, got extra (err=%v)", err)
	}
}

func TestSendPlainTextOnlyOverImplicitTLS(t *testing.T) {
	be := &backend{}
	cfg := startServer(t, be, serverOptions{implicitTLS: true})
	msg := testMessage()
	msg.HTML = ""
	if err := newMailer(t, cfg).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs, _, _ := be.snapshot()
	if len(msgs) != 1 || !msgs[0].tls {
		t.Fatalf("want one message over TLS, got %d", len(msgs))
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(msgs[0].data))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	checkCommonHeaders(t, parsed.Header)
	checkQuotedPrintablePart(t, parsed.Header.Get("Content-Type"), parsed.Header.Get("Content-Transfer-Encoding"),
		parsed.Body, "text/plain", testText)
}

func checkCommonHeaders(t *testing.T, h mail.Header) {
	t.Helper()
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != testSubject {
		t.Errorf("Subject decodes to %q (%v), want %q", subject, err, testSubject)
	}
	if raw := h.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?q?") {
		t.Errorf("raw Subject %q is not Q-encoded", raw)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "noreply@example.com" || from[0].Name != "Steward Datenschutz" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Name != "Ana Müller" || to[0].Address != "ana@example.org" || to[1].Address != "bob@example.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if date, err := h.Date(); err != nil || date.IsZero() {
		t.Errorf("Date %q does not parse: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") || len(id) < len("<@example.com>")+16 {
		t.Errorf("Message-ID = %q, want <random@example.com>", id)
	}
	if v := h.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	if v := h.Get("List-Unsubscribe"); v != "<https://steward.example.com/u/abc>" {
		t.Errorf("List-Unsubscribe = %q", v)
	}
	if h.Get("Bcc") != "" || h.Get("Cc") != "" {
		t.Error("unexpected Cc/Bcc header")
	}
}

// checkQuotedPrintablePart decodes a body itself, so the test fails if the
// body is not really quoted-printable.
func checkQuotedPrintablePart(t *testing.T, contentType, encoding string, body io.Reader, wantType, want string) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != wantType || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type = %q, want %s; charset=utf-8", contentType, wantType)
	}
	if encoding != "quoted-printable" {
		t.Errorf("%s Content-Transfer-Encoding = %q", wantType, encoding)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 76 {
			t.Errorf("%s body line longer than 76 octets: %q", wantType, line)
		}
	}
	decoded, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s body is not valid quoted-printable: %v", wantType, err)
	}
	// Line breaks travel as CRLF on the wire.
	if got, want := strings.TrimRight(string(decoded), "\r\n"), strings.TrimRight(strings.ReplaceAll(want, "\n", "\r\n"), "\r\n"); got != want {
		t.Errorf("%s body = %q, want %q", wantType, got, want)
	}
}

func TestSendRefusesServerWithoutSTARTTLS(t *testing.T) {
	be := &backend{}
	cfg := startServer(t, be, serverOptions{})
	err := newMailer(t, cfg).Send(context.Background(), testMessage())
	if !errors.Is(err, ErrTLSNotOffered) {
		t.Fatalf("Send error = %v, want ErrTLSNotOffered", err)
	}
	if !IsPermanent(err) {
		t.Error("missing STARTTLS should be permanent")
	}
	msgs, mailFrom, authTry := be.snapshot()
	if len(msgs) != 0 || mailFrom != 0 || authTry != 0 {
		t.Errorf("server saw messages=%d MAIL=%d AUTH=%d, want nothing", len(msgs), mailFrom, authTry)
	}
}

func TestSendWrongPasswordIsPermanentAuthError(t *testing.T) {
	be := &backend{}
	cfg := startServer(t, be, serverOptions{startTLS: true})
	cfg.Password = "wrong"
	err := newMailer(t, cfg).Send(context.Background(), testMessage())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Send error = %v, want ErrAuth", err)
	}
	if !IsPermanent(err) {
		t.Errorf("535 auth failure should be permanent: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
	msgs, mailFrom, authTry := be.snapshot()
	if len(msgs) != 0 || mailFrom != 0 || authTry != 1 {
		t.Errorf("server saw messages=%d MAIL=%d AUTH=%d, want only the failed AUTH", len(msgs), mailFrom, authTry)
	}
}

func TestSendRecipientRefusal(t *testing.T) {
	for _, tc := range []struct {
		code      int
		permanent bool
	}{
		{451, false},
		{550, true},
	} {
		be := &backend{rcptReply: func(to string) error {
			if to == "bob@example.org" {
				return &smtp.SMTPError{Code: tc.code, EnhancedCode: smtp.EnhancedCode{tc.code / 100, 1, 1}, Message: "not now"}
			}
			return nil
		}}
		cfg := startServer(t, be, serverOptions{startTLS: true})
		err := newMailer(t, cfg).Send(context.Background(), testMessage())
		if !errors.Is(err, ErrRecipientRefused) {
			t.Fatalf("%d: Send error = %v, want ErrRecipientRefused", tc.code, err)
		}
		var mailErr *Error
		if !errors.As(err, &mailErr) || mailErr.Recipient != "bob@example.org" || mailErr.Code != tc.code {
			t.Errorf("%d: error %#v does not name bob@example.org with code %d", tc.code, mailErr, tc.code)
		}
		if !strings.Contains(err.Error(), "bob@example.org") {
			t.Errorf("%d: error text %q does not name the recipient", tc.code, err)
		}
		if IsPermanent(err) != tc.permanent {
			t.Errorf("%d: IsPermanent = %v, want %v", tc.code, IsPermanent(err), tc.permanent)
		}
		if msgs, _, _ := be.snapshot(); len(msgs) != 0 {
			t.Errorf("%d: message delivered despite a refused recipient", tc.code)
		}
	}
}

func TestSendRefusesInvalidMessagesWithoutConnecting(t *testing.T) {
	idle := newIdleListener(t)
	// The short timeout only keeps a regression (a connect) from stalling;
	// assertNoConnection is what detects it.
	m := newMailer(t, Config{Host: "127.0.0.1", Port: idle.port, From: "noreply@example.com", Timeout: time.Second})
	cases := map[string]func(*Message){
		"CRLF in subject":        func(m *Message) { m.Subject = "Hi\r\nBcc: eve@evil.example" },
		"LF in subject":          func(m *Message) { m.Subject = "Hi\nBcc: eve@evil.example" },
		"CRLF in recipient":      func(m *Message) { m.To = []string{"ana@example.org\r\nBcc: eve@evil.example"} },
		"CRLF in header value":   func(m *Message) { m.Headers = map[string]string{"X-Steward": "a\r\nBcc: eve@evil.example"} },
		"colon in header name":   func(m *Message) { m.Headers = map[string]string{"X-A: b\r\nBcc": "eve@evil.example"} },
		"NUL in header value":    func(m *Message) { m.Headers = map[string]string{"X-Steward": "a\x00b"} },
		"reserved header Bcc":    func(m *Message) { m.Headers = map[string]string{"bcc": "eve@evil.example"} },
		"reserved header From":   func(m *Message) { m.Headers = map[string]string{"FROM": "ceo@example.com"} },
		"duplicate header":       func(m *Message) { m.Headers = map[string]string{"X-A": "1", "x-a": "2"} },
		"invalid address":        func(m *Message) { m.To = []string{"not an address"} },
		"two addresses in one":   func(m *Message) { m.To = []string{"a@example.org, b@example.org"} },
		"non-ASCII mailbox":      func(m *Message) { m.To = []string{"jürgen@example.org"} },
		"no recipients":          func(m *Message) { m.To = nil },
		"empty text body":        func(m *Message) { m.Text = "  " },
		"unfoldable header word": func(m *Message) { m.Headers = map[string]string{"X-Long": strings.Repeat("a", 1000)} },
	}
	for name, mutate := range cases {
		msg := testMessage()
		mutate(&msg)
		err := m.Send(context.Background(), msg)
		if !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: Send error = %v, want ErrInvalidMessage", name, err)
		}
		if !IsPermanent(err) {
			t.Errorf("%s: invalid message should be permanent", name)
		}
	}
	idle.assertNoConnection(t)
}

func TestSendHonoursContext(t *testing.T) {
	t.Run("cancelled before start", func(t *testing.T) {
		idle := newIdleListener(t)
		m := newMailer(t, Config{Host: "127.0.0.1", Port: idle.port, From: "noreply@example.com"})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := m.Send(ctx, testMessage())
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrConnection) || IsPermanent(err) {
			t.Fatalf("Send error = %v, want temporary ErrConnection wrapping context.Canceled", err)
		}
		idle.assertNoConnection(t)
	})

	t.Run("cancelled while waiting for the server", func(t *testing.T) {
		// A server that accepts but never greets: Send can only return
		// because the context was cancelled.
		idle := newIdleListener(t)
		accepted := make(chan struct{})
		go func() {
			conn, err := idle.l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			close(accepted)
			io.Copy(io.Discard, conn) // hold the connection until the client closes it
		}()
		m := newMailer(t, Config{Host: "127.0.0.1", Port: idle.port, From: "noreply@example.com", Timeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() { result <- m.Send(ctx, testMessage()) }()
		<-accepted
		cancel()
		err := <-result
		if !errors.Is(err, context.Canceled) || IsPermanent(err) {
			t.Fatalf("Send error = %v, want temporary error wrapping context.Canceled", err)
		}
	})

	t.Run("config timeout", func(t *testing.T) {
		idle := newIdleListener(t)
		go func() {
			conn, err := idle.l.Accept()
			if err == nil {
				defer conn.Close()
				io.Copy(io.Discard, conn)
			}
		}()
		m := newMailer(t, Config{Host: "127.0.0.1", Port: idle.port, From: "noreply@example.com", Timeout: 50 * time.Millisecond})
		err := m.Send(context.Background(), testMessage())
		if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
			t.Fatalf("Send error = %v, want temporary error wrapping context.DeadlineExceeded", err)
		}
	})
}

func TestSendUntrustedCertificateIsConnectionError(t *testing.T) {
	be := &backend{}
	cfg := startServer(t, be, serverOptions{startTLS: true})
	cfg.RootCAs = nil // system roots do not know the test certificate
	err := newMailer(t, cfg).Send(context.Background(), testMessage())
	if !errors.Is(err, ErrConnection) {
		t.Fatalf("Send error = %v, want ErrConnection", err)
	}
	if _, mailFrom, authTry := be.snapshot(); mailFrom != 0 || authTry != 0 {
		t.Errorf("server saw MAIL=%d AUTH=%d over an unverified connection", mailFrom, authTry)
	}
}
