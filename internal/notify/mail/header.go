package mail

import (
	"bytes"
	"fmt"
	"strings"
)

const (
	// foldAt is the line length RFC 5322 recommends; maxHeaderToken keeps
	// unfoldable runs safely below the hard 998-octet limit.
	foldAt         = 78
	maxHeaderToken = 900
)

// checkHeaderValue refuses anything that could end the header line early
// (header injection) or produce a line no server must accept.
func checkHeaderValue(name, value string) error {
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("header %s contains CR or LF", name)
	}
	for _, r := range value {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return fmt.Errorf("header %s contains a control character", name)
		}
	}
	for _, token := range strings.Fields(value) {
		if len(token) > maxHeaderToken {
			return fmt.Errorf("header %s has a word longer than %d bytes", name, maxHeaderToken)
		}
	}
	return nil
}

// validHeaderName follows RFC 5322 ftext: printable ASCII except colon.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// writeHeader writes "Name: value" and folds it at spaces so lines stay near
// foldAt. Folding only inserts CRLF before an existing space, so unfolding
// restores the value exactly. value must already be checked and encoded.
func writeHeader(buf *bytes.Buffer, name, value string) {
	buf.WriteString(name)
	buf.WriteString(":")
	lineLen := len(name) + 1
	for _, token := range strings.Split(value, " ") {
		// Never fold before an empty token: that would leave a line of only
		// whitespace, which RFC 5322 forbids.
		if token != "" && lineLen+1+len(token) > foldAt && lineLen > len(name)+1 {
			buf.WriteString("\r\n")
			lineLen = 0
		}
		buf.WriteString(" ")
		buf.WriteString(token)
		lineLen += 1 + len(token)
	}
	buf.WriteString("\r\n")
}
