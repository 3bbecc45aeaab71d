package scep

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestGetCACapsAndCACert(t *testing.T) {
	e := newTestEnv(t)
	resp, body := get(t, e.url(tenantA)+"?operation=GetCACaps")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GetCACaps: HTTP %d", resp.StatusCode)
	}
	caps := strings.Fields(string(body))
	for _, want := range []string{"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"} {
		if !strings.Contains(" "+strings.Join(caps, " ")+" ", " "+want+" ") {
			t.Errorf("GetCACaps lacks %s: %q", want, body)
		}
	}

	ra, ca := e.getCACert(t, tenantB)
	if !ca.Equal(e.cas[tenantB].Certificate()) || ra.CheckSignatureFrom(e.cas[tenantB].Certificate()) != nil {
		t.Error("GetCACert returned another tenant's CA or RA")
	}
}

func TestHTTPErrors(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name   string
		method string
		url    string
		body   []byte
		want   int
	}{
		{"unknown tenant", http.MethodGet, e.url("nobody") + "?operation=GetCACert", nil, http.StatusNotFound},
		{"unknown tenant's caps", http.MethodGet, e.url("nobody") + "?operation=GetCACaps", nil, http.StatusNotFound},
		{"unknown tenant's PKIOperation", http.MethodPost, e.url("nobody") + "?operation=PKIOperation", []byte("x"), http.StatusNotFound},
		{"unknown operation", http.MethodGet, e.url(tenantA) + "?operation=GetCRL", nil, http.StatusBadRequest},
		{"no operation", http.MethodGet, e.url(tenantA), nil, http.StatusBadRequest},
		{"PUT", http.MethodPut, e.url(tenantA) + "?operation=PKIOperation", []byte("x"), http.StatusMethodNotAllowed},
		{"empty body", http.MethodPost, e.url(tenantA) + "?operation=PKIOperation", nil, http.StatusBadRequest},
		{"garbage body", http.MethodPost, e.url(tenantA) + "?operation=PKIOperation", []byte("not CMS"), http.StatusBadRequest},
		{"body over 64 KiB", http.MethodPost, e.url(tenantA) + "?operation=PKIOperation", bytes.Repeat([]byte{0x30}, maxMessageBytes+1), http.StatusBadRequest},
		{"GET without message", http.MethodGet, e.url(tenantA) + "?operation=PKIOperation", nil, http.StatusBadRequest},
		{"GET with bad base64", http.MethodGet, e.url(tenantA) + "?operation=PKIOperation&message=%25%25", nil, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestUnsupportedMessageTypes: CertPoll, GetCert and GetCRL are signed SCEP
// requests that Steward does not serve (it never answers PENDING and keeps
// no CRL); RFC 8894 answers them with a CertRep FAILURE badRequest, not
// with an HTTP error.
func TestUnsupportedMessageTypes(t *testing.T) {
	e := newTestEnv(t)
	ca := e.cas[tenantA].Certificate()
	ra := e.raCert(tenantA)
	d := newDevice(t, rsaKey(t, 2048))
	for _, msgType := range []scep.MessageType{scep.CertPoll, scep.GetCert, scep.GetCRL, scep.UpdateReq} {
		t.Run(msgType.String(), func(t *testing.T) {
			r := d.enrol(t, e.url(tenantA), ca, d.request(t, ra, msgType, subject("d"), ""))
			if r.status != scep.FAILURE || r.failInfo != scep.BadRequest {
				t.Fatalf("%s %s, want FAILURE badRequest", r.status, r.failInfo)
			}
		})
	}
}

// FuzzPKIOperation feeds device-controlled bytes to the PKIOperation path:
// it must answer or refuse, never panic, and never issue a certificate (no
// challenge exists in this store).
func FuzzPKIOperation(f *testing.F) {
	ctx := context.Background()
	srv, ca, _ := fuzzServer(f, func(context.Context, store.Queries, Issuance) error {
		return errors.New("fuzzed input must not reach issuance")
	})
	ra, err := ca.currentRA(ctx, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	d := newDevice(f, rsaKey(f, 2048))
	f.Add(d.request(f, ra.cert, scep.PKCSReq, subject("fuzz"), "no-such-challenge"))
	f.Add(d.request(f, ra.cert, scep.RenewalReq, subject("fuzz"), ""))
	f.Add([]byte("not CMS"))
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		reply, err := srv.pkiOperation(ctx, ca, data)
		var bad *badMessageError
		if errors.As(err, &bad) {
			return
		}
		if err != nil {
			t.Fatalf("unexpected server error: %v", err)
		}
		msg, err := scep.ParsePKIMessage(reply)
		if err != nil {
			t.Fatalf("server reply does not parse: %v", err)
		}
		if msg.PKIStatus != scep.FAILURE {
			t.Fatalf("reply status %s, want FAILURE", msg.PKIStatus)
		}
	})
}
