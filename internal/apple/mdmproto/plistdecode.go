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

// The parser's memory follows the elements, weighed here by what each
// costs it (measured with runtime.MemStats, decoding into the result
// types). A scalar costs some 350 bytes, mostly garbage at once, and keeps
// 16 until the decode ends; an <array> 500, keeping 200; a <dict> 1,400,
// keeping its two 32-entry slices, 1 KiB. An element in an array costs a
// slot more: the decoder makes a slice of the target type, twice the
// array's length, before it decodes any element (336 bytes a profile).
// Weighed so, a body at the budget holds the heap at a few tens of MiB
// whatever its shape, where an empty <dict/> of 7 bytes held 1.7 KiB.
const (
	dictWeight      = 16
	arrayWeight     = 4
	scalarWeight    = 1
	arraySlotWeight = 2
)

// Weight budgets. A check-in or a MachineInfo is one dictionary of a dozen
// or two keys (an Authenticate weighs 41). A command result may list
// thousands of apps: one of 16 keys weighs 50, so 4,000 weigh 200,000 and
// cost the parser some 65 MiB, 10 MiB of it at once.
const (
	maxMessageWeight = 1_000
	maxResultWeight  = 250_000
)

// maxPlistText bounds one <key> or <string>. Names, versions, serial
// numbers, carriers and error descriptions run to tens of bytes, a
// profile's description to a few hundred; without a bound one inventory
// value could take most of a 4 MiB body. <data> (tokens, certificates,
// status reports) is not bounded here.
const maxPlistText = 16 << 10

// maxPlistNumberText bounds an <integer>, <real> or <date>: none needs more
// than 30 bytes.
const maxPlistNumberText = 64

// scalarTextLimits are the elements that hold text and no element, with
// the bound of that text (-1: the body's; the parser skips a boolean's).
var scalarTextLimits = map[string]int{
	"key": maxPlistText, "string": maxPlistText,
	"integer": maxPlistNumberText, "real": maxPlistNumberText, "date": maxPlistNumberText,
	"data": -1, "true": -1, "false": -1,
}

// decodePlist decodes a small XML plist body, a check-in or a MachineInfo,
// into v, enforcing limit.
func decodePlist(body []byte, limit int, v any) error {
	return decodePlistWithin(body, limit, maxMessageWeight, v)
}

// decodePlistWithin decodes an XML plist body into v, refusing one of more
// than maxBytes or weighing more than maxWeight.
func decodePlistWithin(body []byte, maxBytes, maxWeight int, v any) error {
	if err := checkPlistBody(body, maxBytes, maxWeight); err != nil {
		return err
	}
	return decodeXMLPlist(body, v)
}

// checkPlistBody refuses, before any parsing, what the plist parser must
// not parse: too large, not XML, too deep, too heavy or with too long a
// text.
func checkPlistBody(body []byte, maxBytes, maxWeight int) error {
	if len(body) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), maxBytes)
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
	return checkXMLShape(body, maxWeight)
}

// decodeXMLPlist decodes a body checkPlistBody accepted.
func decodeXMLPlist(body []byte, v any) error {
	if _, err := plist.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// checkXMLShape scans the XML tokens once, cheaply, before the recursive
// plist parser sees them. It refuses nesting deeper than maxPlistDepth,
// elements weighing more than maxWeight in all, an element inside a
// scalar (the parser would join the text around it, past the text bound)
// and a scalar's text longer than its bound.
func checkXMLShape(body []byte, maxWeight int) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, weight := 0, 0
	// inArray[d] says whether the element open at depth d is an <array>.
	var inArray [maxPlistDepth + 1]bool
	// scalar is the scalar element open, "" outside one; text is the length
	// of its text so far, which a comment or CDATA section may split.
	scalar, text := "", 0
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
			if scalar == "" {
				continue
			}
			text += len(tok)
			if limit := scalarTextLimits[scalar]; limit >= 0 && text > limit {
				return fmt.Errorf("%w: a <%s> longer than %d bytes", ErrMalformed, scalar, limit)
			}
		case xml.StartElement:
			if scalar != "" {
				return fmt.Errorf("%w: an element inside a <%s>", ErrMalformed, scalar)
			}
			if _, ok := scalarTextLimits[tok.Name.Local]; ok {
				scalar, text = tok.Name.Local, 0
			}
			if depth++; depth > maxPlistDepth {
				return fmt.Errorf("%w: nested deeper than %d elements", ErrMalformed, maxPlistDepth)
			}
			weight += elementWeight(tok.Name.Local)
			if inArray[depth-1] {
				weight += arraySlotWeight
			}
			if weight > maxWeight {
				return tooHeavy(maxWeight)
			}
			inArray[depth] = tok.Name.Local == "array"
		case xml.EndElement:
			// A scalar holds no element, so any end tag closes it.
			scalar = ""
			// RawToken matches no end tag to its start: one with nothing
			// open would lower the count, and let deeper nesting past it.
			if depth--; depth < 0 {
				return fmt.Errorf("%w: an end tag closes nothing", ErrMalformed)
			}
		default:
			// Comments, processing instructions and directives cost the
			// parser a token each too.
			if weight += scalarWeight; weight > maxWeight {
				return tooHeavy(maxWeight)
			}
		}
	}
}

func elementWeight(name string) int {
	switch name {
	case "dict":
		return dictWeight
	case "array":
		return arrayWeight
	}
	return scalarWeight
}

func tooHeavy(maxWeight int) error {
	return fmt.Errorf("%w: more than %d elements (a <dict> counts as %d, an <array> as %d)", ErrTooLarge, maxWeight, dictWeight, arrayWeight)
}

func missing(key string) error { return fmt.Errorf("%w: %s", ErrMissingKey, key) }
