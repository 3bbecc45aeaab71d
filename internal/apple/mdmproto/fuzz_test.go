package mdmproto

import (
	"crypto/x509"
	"errors"
	"testing"
)

func FuzzDecodeCheckin(f *testing.F) {
	for _, seed := range [][]byte{authenticateDevice, authenticateUserEnrollment, tokenUpdateDevice, tokenUpdateUser,
		checkOut, userAuthenticate, setBootstrapToken, getBootstrapToken, declarativeManagement,
		[]byte("bplist00"), []byte(plistHead + "<array/></plist>")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCheckin(body)
		if (c == nil) == (err == nil) {
			t.Fatalf("want exactly one of message and error, got %T and %v", c, err)
		}
		if err == nil && c.Sender().DeviceID() == "" {
			t.Fatal("accepted a check-in with no device identity")
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	for _, seed := range [][]byte{idleResult, deviceInformationRes, securityInfoRes, installedAppsRes, managedAppsRes,
		profileListRes, certificateListRes, deviceLocationRes, errorResult} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResult(body)
		if err != nil {
			return
		}
		if !r.Status.known() || r.DeviceID() == "" {
			t.Fatalf("accepted an invalid result: %+v", r)
		}
		// The typed decoders read the same device input; none may panic.
		_, _ = DecodeDeviceInformation(r)
		_, _ = DecodeSecurityInfo(r)
		_, _ = DecodeInstalledApplicationList(r)
		_, _ = DecodeManagedApplicationList(r)
		_, _ = DecodeProfileList(r)
		_, _ = DecodeCertificateList(r)
		_, _ = DecodeDeviceLocation(r)
	})
}

func FuzzVerifyMdmSignature(f *testing.F) {
	pki := newTestPKI(f)
	key := newECKey(f)
	leaf := pki.leaf(f, key, x509.ExtKeyUsageClientAuth)
	roots := x509.NewCertPool()
	roots.AddCert(pki.intermediate)
	valid, err := SignMdmMessage(tokenUpdateDevice, leaf, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, tokenUpdateDevice)
	f.Add(valid[:len(valid)/2], tokenUpdateDevice)
	f.Add("MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCA", []byte{})
	f.Add("", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		signer, err := VerifyMdmSignature(header, body, roots, testNow)
		if err != nil {
			if signer != nil {
				t.Fatal("signer returned with an error")
			}
			for _, want := range []error{ErrSignatureMissing, ErrSignatureMalformed, ErrSignatureInvalid, ErrSignerUntrusted} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		if !signer.Equal(leaf) {
			t.Fatal("accepted a signer that is not the only trusted leaf")
		}
	})
}
