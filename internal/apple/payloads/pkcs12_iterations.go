package payloads

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// maxPKCS12Iterations caps the key-derivation iterations a PKCS#12 file may
// ask for. The file names its own counts, and decoding runs each in full (up
// to 2^31, minutes of CPU) before it can even tell a wrong password. OpenSSL
// 3 writes 2048, Java 10,000, and the most cautious tools 600,000.
const maxPKCS12Iterations = 1_000_000

// tooManyIterationsError carries which part of the file asks for too many
// iterations; see checkPKCS12Iterations.
type tooManyIterationsError struct {
	part       string
	iterations int
}

func (e *tooManyIterationsError) Error() string {
	return fmt.Sprintf("the %s asks for %d key-derivation iterations", e.part, e.iterations)
}

// errNotPKCS12 is a file whose ASN.1 is not a PFX; the decoder refuses it too.
var errNotPKCS12 = errors.New("not a PKCS#12 PFX")

// The PKCS#12 structures (RFC 7292, RFC 8018, RFC 9579), as far as the
// iteration counts, in the shapes go-pkcs12 decodes them.
type pfxPDU struct {
	Version  int
	AuthSafe contentInfo
	MacData  pfxMacData `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type pfxMacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type encryptedData struct {
	Version              int
	EncryptedContentInfo struct {
		ContentType                asn1.ObjectIdentifier
		ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
		EncryptedContent           []byte `asn1:"tag:0,optional"`
	}
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes asn1.RawValue `asn1:"optional"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes1Params are the parameters of the PKCS#12 password-based ciphers.
type pbes1Params struct {
	Salt       []byte
	Iterations int
}

// kdfThenScheme is the shape of both PBES2 and PBMAC1 parameters: a key
// derivation, then the cipher or MAC that uses the key.
type kdfThenScheme struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

var (
	oidData                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKeyBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPBES2                = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBKDF2               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	pkcs12PBEAlgorithmsRoot = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
)

// checkPKCS12Iterations returns an *tooManyIterationsError when the MAC, an
// encrypted safe or a shrouded private key of the PKCS#12 file der asks for
// more than maxPKCS12Iterations, and errNotPKCS12 when der is not a PFX. It
// reads the ASN.1 only and derives no key, so it costs next to nothing.
//
// A private key inside an encrypted safe stays out of its sight until the
// safe is decrypted; OpenSSL, Java, Windows and Apple's tools all keep the
// key in a plain safe, but a crafted file can still make one decode slow.
func checkPKCS12Iterations(der []byte) error {
	var pfx pfxPDU
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return errNotPKCS12
	}
	mac := pfx.MacData.Mac.Algorithm
	switch {
	case mac.Algorithm.Equal(oidPBMAC1):
		if err := checkAlgorithmIterations("MAC", mac); err != nil {
			return err
		}
	case len(mac.Algorithm) > 0 && pfx.MacData.Iterations > maxPKCS12Iterations:
		return &tooManyIterationsError{"MAC", pfx.MacData.Iterations}
	}
	var authSafe []byte
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil // the decoder supports only password-protected files
	}
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return errNotPKCS12
	}
	var safes []contentInfo
	if _, err := asn1.Unmarshal(authSafe, &safes); err != nil {
		return errNotPKCS12
	}
	for _, safe := range safes {
		switch {
		case safe.ContentType.Equal(oidEncryptedData):
			var ed encryptedData
			if _, err := asn1.Unmarshal(safe.Content.Bytes, &ed); err != nil {
				return errNotPKCS12
			}
			if err := checkAlgorithmIterations("encrypted certificate safe", ed.EncryptedContentInfo.ContentEncryptionAlgorithm); err != nil {
				return err
			}
		case safe.ContentType.Equal(oidData):
			if err := checkPlainSafe(safe.Content.Bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPlainSafe checks the shrouded private keys of an unencrypted safe.
func checkPlainSafe(content []byte) error {
	var contents []byte
	if _, err := asn1.Unmarshal(content, &contents); err != nil {
		return errNotPKCS12
	}
	var bags []safeBag
	if _, err := asn1.Unmarshal(contents, &bags); err != nil {
		return errNotPKCS12
	}
	for _, bag := range bags {
		if !bag.ID.Equal(oidShroudedKeyBag) {
			continue
		}
		var key encryptedPrivateKeyInfo
		if _, err := asn1.Unmarshal(bag.Value.Bytes, &key); err != nil {
			return errNotPKCS12
		}
		if err := checkAlgorithmIterations("private key", key.Algorithm); err != nil {
			return err
		}
	}
	return nil
}

// checkAlgorithmIterations reads the iteration count of a password-based
// cipher or MAC: PBES2 or PBMAC1 over PBKDF2, or a PKCS#12 PBE cipher.
// Parameters it cannot read are left to the decoder, which refuses them
// before deriving a key.
func checkAlgorithmIterations(part string, alg pkix.AlgorithmIdentifier) error {
	iterations := 0
	switch {
	case alg.Algorithm.Equal(oidPBES2), alg.Algorithm.Equal(oidPBMAC1):
		var params kdfThenScheme
		var kdf pbkdf2Params
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &params); err != nil || !params.KDF.Algorithm.Equal(oidPBKDF2) {
			return nil
		}
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
			return nil
		}
		iterations = kdf.Iterations
	case oidUnder(alg.Algorithm, pkcs12PBEAlgorithmsRoot):
		var params pbes1Params
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &params); err != nil {
			return nil
		}
		iterations = params.Iterations
	}
	if iterations > maxPKCS12Iterations {
		return &tooManyIterationsError{part, iterations}
	}
	return nil
}

func oidUnder(oid, root asn1.ObjectIdentifier) bool {
	return len(oid) > len(root) && oid[:len(root)].Equal(root)
}
