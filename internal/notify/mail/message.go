package mail

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"sort"
	"strings"
	"time"
)

// Message is one notification e-mail. Every recipient in To sees the others,
// so send one Message per employee when addresses must stay private.
type Message struct {
	To      []string // RFC 5322 addresses, e.g. "Ana <ana@example.com>"
	Subject string   // may be UTF-8
	Text    string   // required plain-text body
	HTML    string   // optional; sent as multipart/alternative with Text
	Headers map[string]string
}

// reservedHeaders are written by the mailer itself; letting callers set them
// would allow spoofing or hidden recipients (Cc/Bcc outside the envelope).
var reservedHeaders = map[string]bool{
	"From": true, "Sender": true, "To": true, "Cc": true, "Bcc": true,
	"Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true,
	"Return-Path": true, "Received": true,
}

// envelope is what travels in MAIL FROM / RCPT TO, separately from the headers.
type envelope struct {
	from string
	to   []string
	data []byte
}

// compose validates msg and renders it. It never touches the network, so
// a rejected message is guaranteed not to have been sent.
func compose(from *mail.Address, msg Message, now time.Time) (*envelope, error) {
	if len(msg.To) == 0 {
		return nil, invalidMessage(errors.New("no recipients"))
	}
	env := &envelope{from: from.Address}
	toHeader := make([]string, 0, len(msg.To))
	seen := make(map[string]bool, len(msg.To))
	for _, raw := range msg.To {
		addr, err := parseAddress("recipient", raw)
		if err != nil {
			return nil, invalidMessage(err)
		}
		toHeader = append(toHeader, addr.String())
		if key := strings.ToLower(addr.Address); !seen[key] {
			seen[key] = true
			env.to = append(env.to, addr.Address)
		}
	}
	if err := checkHeaderValue("Subject", msg.Subject); err != nil {
		return nil, invalidMessage(err)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return nil, invalidMessage(errors.New("plain-text body is required"))
	}
	extra, err := extraHeaders(msg.Headers)
	if err != nil {
		return nil, invalidMessage(err)
	}
	var buf bytes.Buffer
	writeHeader(&buf, "From", from.String())
	writeHeader(&buf, "To", strings.Join(toHeader, ", "))
	writeHeader(&buf, "Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	writeHeader(&buf, "Date", now.Format(time.RFC1123Z))
	writeHeader(&buf, "Message-ID", newMessageID(from.Address))
	writeHeader(&buf, "MIME-Version", "1.0")
	for _, h := range extra {
		writeHeader(&buf, h[0], mime.QEncoding.Encode("utf-8", h[1]))
	}
	if err := writeBody(&buf, msg.Text, msg.HTML); err != nil {
		return nil, fmt.Errorf("mail: encoding body: %w", err)
	}
	env.data = buf.Bytes()
	return env, nil
}

// extraHeaders validates caller headers and returns them canonicalised and
// sorted, so output does not depend on map order.
func extraHeaders(headers map[string]string) ([][2]string, error) {
	out := make([][2]string, 0, len(headers))
	seen := make(map[string]bool, len(headers))
	for name, value := range headers {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("header name %q is not a valid field name", name)
		}
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		if reservedHeaders[canonical] {
			return nil, fmt.Errorf("header %s is set by the mailer and cannot be overridden", canonical)
		}
		if seen[canonical] {
			return nil, fmt.Errorf("header %s is given more than once", canonical)
		}
		seen[canonical] = true
		if err := checkHeaderValue(canonical, value); err != nil {
			return nil, err
		}
		out = append(out, [2]string{canonical, value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

func writeBody(buf *bytes.Buffer, text, html string) error {
	if html == "" {
		writeHeader(buf, "Content-Type", "text/plain; charset=utf-8")
		writeHeader(buf, "Content-Transfer-Encoding", "quoted-printable")
		buf.WriteString("\r\n")
		return writeQuotedPrintable(buf, text)
	}
	parts := multipart.NewWriter(buf)
	writeHeader(buf, "Content-Type", mime.FormatMediaType("multipart/alternative",
		map[string]string{"boundary": parts.Boundary()}))
	buf.WriteString("\r\n")
	// Least preferred first, as RFC 2046 asks for multipart/alternative.
	for _, p := range []struct{ mediaType, body string }{
		{"text/plain", text},
		{"text/html", html},
	} {
		w, err := parts.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.mediaType + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		if err := writeQuotedPrintable(w, p.body); err != nil {
			return err
		}
	}
	return parts.Close()
}

func writeQuotedPrintable(w io.Writer, body string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(body)); err != nil {
		return err
	}
	return qp.Close()
}

// newMessageID returns "<random@domain>" using the sender's domain, so the
// ID is globally unique without exposing the Steward host name.
func newMessageID(from string) string {
	domain := from[strings.LastIndexByte(from, '@')+1:]
	return "<" + rand.Text() + "@" + domain + ">"
}
