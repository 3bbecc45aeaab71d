package mdmproto

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"

	"howett.net/plist"

	"github.com/steward-mdm/steward/internal/apple/plistsafe"
)

// MachineInfo is what a device says about itself when it asks for an
// enrolment profile, as in account-driven User Enrollment's request to the
// enrolment URL. It is a plist dictionary, signed by the device's
// Apple-issued identity in an attached CMS SignedData; Apple's own example
// shows it unsigned too, so both are read, and XML or binary alike: a
// refusal halts the device's enrolment. Only the keys Steward may look at
// are decoded: User Enrollment sends no hardware identifiers.
type MachineInfo struct {
	Language string `plist:"LANGUAGE"`
	Product  string `plist:"PRODUCT"`
	Version  string `plist:"VERSION"`
}

// MaxMachineInfoBytes bounds the request: three short strings, a
// certificate chain and a signature.
const MaxMachineInfoBytes = 64 << 10

// maxMachineInfoValues bounds a binary MachineInfo's decoded tree.
const maxMachineInfoValues = 4096

// DecodeMachineInfo reads a profile request's body. Its signature is not
// checked: that needs Apple's root, and what authorises the request is its
// access token, not the body. A body that is neither a plist dictionary nor
// a SignedData holding one is refused (ErrMalformed, ErrTooLarge).
func DecodeMachineInfo(body []byte) (MachineInfo, error) {
	var info MachineInfo
	if len(body) > MaxMachineInfoBytes {
		return info, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), MaxMachineInfoBytes)
	}
	content := body
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n\ufeff"), []byte("<")) && !bytes.HasPrefix(body, []byte("bplist")) {
		p7, err := parseCMS(body)
		if err != nil {
			return info, fmt.Errorf("%w: neither a plist nor a CMS SignedData: %v", ErrMalformed, err)
		}
		if len(p7.Signers) == 0 || len(p7.Content) == 0 {
			return info, fmt.Errorf("%w: the SignedData carries no signed plist", ErrMalformed)
		}
		content = p7.Content
	}
	if bytes.HasPrefix(content, []byte("bplist")) {
		// Binary, which decodePlist refuses: measured first, as shared
		// references or a container's claimed count can make the library
		// allocate without bound from a few bytes. A real MachineInfo holds
		// a few dozen values.
		if _, err := plistsafe.Unmarshal(content, &info, maxMachineInfoValues); err != nil {
			return MachineInfo{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return info, nil
	}
	if err := decodePlist(content, MaxMachineInfoBytes, &info); err != nil {
		return MachineInfo{}, err
	}
	return info, nil
}

// SignMachineInfo builds the body a device sends: info as an XML plist in
// an attached CMS SignedData by cert. The simulator and tests use it.
func SignMachineInfo(info MachineInfo, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	raw, err := plist.Marshal(info, plist.XMLFormat)
	if err != nil {
		return nil, err
	}
	return signCMS(raw, cert, key, nil, false)
}
