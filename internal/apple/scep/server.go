package scep

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
)

// maxMessageBytes bounds a PKIOperation message; a real one is a few KiB.
const maxMessageBytes = 64 << 10

// caCaps are this server's capabilities (RFC 8894 section 3.5.2).
const caCaps = "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\nRenewal\n"

// ErrUnknownTenant is returned by Config.CA for a tenant that does not
// exist; the server answers 404.
var ErrUnknownTenant = errors.New("scep: unknown tenant")

// Config wires a Server to Steward. Store, TenantFromRequest, CA and
// OnIssued are required.
type Config struct {
	// Store holds challenges and current-certificate entries; an issuance
	// is one of its transactions.
	Store store.Store
	// TenantFromRequest returns the tenant ID the request is for ("" when
	// the path names none).
	TenantFromRequest func(*http.Request) string
	// CA returns the tenant's CA, usually OpenCA with the tenant's name,
	// or ErrUnknownTenant or ErrNoCA, which are answered alike.
	CA func(ctx context.Context, tenantID string) (*CA, error)
	// OnIssued runs in the issuance's transaction, before the certificate
	// is sent; Steward binds it to the enrolment there. An error fails the
	// issuance and undoes it.
	OnIssued func(ctx context.Context, q store.Queries, issued Issuance) error
	// OnRefused, when set, is told why a request got a CertRep FAILURE,
	// after everything the request did was undone.
	OnRefused func(ctx context.Context, refused Refused)
	// ClientIP, when set, returns a request's client address, for the
	// Issuance and Refused it leads to (say, through trusted proxies).
	ClientIP func(*http.Request) string
	// Validity of device certificates; DefaultValidity when zero. Never
	// beyond the CA's own expiry.
	Validity time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives tenant IDs and outcomes, never request content.
	Logger *slog.Logger
}

// Issuance is what OnIssued is told about a certificate being issued.
type Issuance struct {
	TenantID    string
	EnrolmentID string
	Certificate *x509.Certificate
	// Renewal: the certificate replaces the identity of a device already
	// enrolled, by a RenewalReq or a renewal challenge, rather than
	// starting an enrolment.
	Renewal bool
	// Renews is the certificate that signed a RenewalReq, nil otherwise.
	// Every certificate issued for an enrolment can sign one until it is
	// renewed or released, so the hook must check that this one is the
	// device's current certificate.
	Renews *x509.Certificate
	// Grant is what the profile whose challenge obtained the certificate
	// granted (IssueChallenge); 0 for a RenewalReq.
	Grant int
	// SourceIP is the requesting client's address (Config.ClientIP), ""
	// when unknown.
	SourceIP string
}

// clientIPKey carries a PKIOperation's client address in its context.
type clientIPKey struct{}

func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// Server answers SCEP requests for every tenant.
type Server struct {
	cfg Config
}

var cmsDefaults sync.Once

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.TenantFromRequest == nil || cfg.CA == nil || cfg.OnIssued == nil {
		return nil, errors.New("scep: Config needs Store, TenantFromRequest, CA and OnIssued")
	}
	if cfg.Validity < 0 {
		return nil, errors.New("scep: Config.Validity must not be negative")
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// pkcs7 keeps its algorithms in package variables and defaults to SHA-1
	// signatures and DES envelopes. We advertise SHA-256 and AES, so switch
	// once, before the first response is built; nothing else in Steward
	// builds CMS envelopes.
	cmsDefaults.Do(func() {
		_ = pkcs7.SetDefaultDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC
	})
	return &Server{cfg: cfg}, nil
}

// Handler serves GetCACaps, GetCACert and PKIOperation (GET and POST).
// Devices never get a 401 from it: a 401 can make an Apple device unenrol.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "SCEP accepts GET and POST", http.StatusMethodNotAllowed)
		return
	}
	tenantID := s.cfg.TenantFromRequest(r)
	if tenantID == "" {
		http.Error(w, "no such SCEP service", http.StatusNotFound)
		return
	}
	switch op := r.URL.Query().Get("operation"); op {
	case "GetCACaps":
		// The capabilities are the same for every tenant, but an unknown
		// tenant gets the 404 GetCACert gives it.
		if _, ok := s.loadCA(w, r, tenantID); !ok {
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, caCaps)
	case "GetCACert":
		ca, ok := s.loadCA(w, r, tenantID)
		if !ok {
			return
		}
		s.serveCACert(w, r, ca)
	case "PKIOperation":
		s.servePKIOperation(w, r, tenantID)
	default:
		http.Error(w, "unknown SCEP operation; use GetCACaps, GetCACert or PKIOperation", http.StatusBadRequest)
	}
}

// serveCACert answers GetCACert with the RA and the CA certificates, in a
// certs-only CMS (RFC 8894 section 4.2.1.2). The issuing CA is left out:
// clients such as micromdm's scepclient encrypt their request to every
// certificate listed, and an envelope needs RSA keys. Each CertRep carries
// it instead (see certrep.go).
func (s *Server) serveCACert(w http.ResponseWriter, r *http.Request, ca *CA) {
	ra, err := ca.currentRA(r.Context(), s.cfg.Now())
	if err == nil {
		var certs []byte
		if certs, err = scep.DegenerateCertificates([]*x509.Certificate{ra.cert, ca.cert}); err == nil {
			w.Header().Set("Content-Type", "application/x-x509-ca-ra-cert")
			_, _ = w.Write(certs)
			return
		}
	}
	s.cfg.Logger.ErrorContext(r.Context(), "scep: GetCACert failed", "tenant", ca.tenantID, "error", err)
	http.Error(w, "SCEP service unavailable", http.StatusInternalServerError)
}

func (s *Server) loadCA(w http.ResponseWriter, r *http.Request, tenantID string) (*CA, bool) {
	ca, err := s.cfg.CA(r.Context(), tenantID)
	if errors.Is(err, ErrUnknownTenant) || errors.Is(err, ErrNoCA) {
		http.Error(w, "no such SCEP service", http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "scep: loading tenant CA failed", "tenant", tenantID, "error", err)
		http.Error(w, "SCEP service unavailable", http.StatusInternalServerError)
		return nil, false
	}
	return ca, true
}

func (s *Server) servePKIOperation(w http.ResponseWriter, r *http.Request, tenantID string) {
	message, err := readMessage(w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ca, ok := s.loadCA(w, r, tenantID)
	if !ok {
		return
	}
	ctx := r.Context()
	if s.cfg.ClientIP != nil {
		ctx = context.WithValue(ctx, clientIPKey{}, s.cfg.ClientIP(r))
	}
	reply, err := s.pkiOperation(ctx, ca, message)
	var bad *badMessageError
	switch {
	case errors.As(err, &bad):
		http.Error(w, bad.Error(), http.StatusBadRequest)
	case err != nil:
		s.cfg.Logger.ErrorContext(r.Context(), "scep: PKIOperation failed", "tenant", tenantID, "error", err)
		http.Error(w, "SCEP service could not complete the request", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/x-pki-message")
		_, _ = w.Write(reply)
	}
}

// readMessage returns the DER PKIMessage of a POST body or of the base64
// "message" parameter of a GET, at most maxMessageBytes either way.
func readMessage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMessageBytes))
		if err != nil {
			return nil, errors.New("PKIOperation body is unreadable or larger than 64 KiB")
		}
		if len(body) == 0 {
			return nil, errors.New("PKIOperation body is empty")
		}
		return body, nil
	}
	encoded := r.URL.Query().Get("message")
	if encoded == "" {
		return nil, errors.New("PKIOperation GET needs a base64 message parameter")
	}
	if base64.StdEncoding.DecodedLen(len(encoded)) > maxMessageBytes {
		return nil, errors.New("PKIOperation message is larger than 64 KiB")
	}
	// Clients that do not escape '+' in the query see it decoded to ' '.
	encoded = strings.ReplaceAll(encoded, " ", "+")
	der, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errors.New("PKIOperation message parameter is not valid base64")
	}
	if len(der) == 0 { // the decoder skips line breaks: "\r" decodes to nothing
		return nil, errors.New("PKIOperation message parameter is empty")
	}
	return der, nil
}
