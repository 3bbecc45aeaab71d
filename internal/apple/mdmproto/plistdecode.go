package mdmproto

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"howett.net/plist"
)

// maxPlistDepth bounds element nesting. Real messages nest under ten deep;
// the plist parser recurses per level, so a body of a million open tags would
// otherwise cost a stack of hundreds of megabytes.
const maxPlistDepth = 32

// maxPlistElements bounds the element count, which drives the parser's
// memory more than the byte size does: 2,000 apps of 20 keys are 80,000.
const maxPlistElements = 250_000

// maxPlistText bounds one <key> or <string>. Names, versions, serial
// numbers, carriers and error descriptions run to tens of bytes, a
// profile's description to a few hundred; without a bound one inventory
// value could take most of a 4 MiB body. <data> (tokens, certificates,
// status reports) is not bounded here.
const maxPlistText = 16 << 10

// decodePlist decodes an XML plist body into v, enforcing limit.
func decodePlist(body []byte, limit int, v any) error {
	if err := checkPlistBody(body, limit); err != nil {
		return err
	}
	return decodeXMLPlist(body, v)
}

// checkPlistBody refuses, before any parsing, what decodePlist must not
// parse: too large, not XML, too deep or too many elements.
func checkPlistBody(body []byte, limit int) error {
	if len(body) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), limit)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", ErrMalformed)
	}
	// Devices send XML. Binary plists are refused because shared object
	// references let a small body expand into a huge value; the OpenStep text
	// format because nothing sends it.
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n\ufeff"), []byte("<")) {
		return fmt.Errorf("%w: only XML plists are accepted", ErrMalformed)
	}
	return checkXMLShape(body)
}

// decodeXMLPlist decodes a body checkPlistBody accepted.
func decodeXMLPlist(body []byte, v any) error {
	if _, err := plist.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// checkXMLShape scans the XML tokens once, cheaply, and refuses nesting
// deeper than maxPlistDepth, more than maxPlistElements elements or a text
// longer than maxPlistText before the recursive plist parser sees them.
func checkXMLShape(body []byte) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, elements := 0, 0
	// text is the length so far of the <key> or <string> being read, -1
	// outside one; a comment or CDATA section may split it into pieces.
	text := -1
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if text >= 0 {
				if text += len(tok); text > maxPlistText {
					return fmt.Errorf("%w: a <key> or <string> longer than %d bytes", ErrMalformed, maxPlistText)
				}
			}
		case xml.StartElement:
			text = -1
			if tok.Name.Local == "key" || tok.Name.Local == "string" {
				text = 0
			}
			if depth++; depth > maxPlistDepth {
				return fmt.Errorf("%w: nested deeper than %d elements", ErrMalformed, maxPlistDepth)
			}
			if elements++; elements > maxPlistElements {
				return fmt.Errorf("%w: more than %d elements", ErrTooLarge, maxPlistElements)
			}
		case xml.EndElement:
			text = -1
			// RawToken matches no end tag to its start: one with nothing
			// open would lower the count, and let deeper nesting past it.
			if depth--; depth < 0 {
				return fmt.Errorf("%w: an end tag closes nothing", ErrMalformed)
			}
		}
	}
}

func missing(key string) error { return fmt.Errorf("%w: %s", ErrMissingKey, key) }
