package scep

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallstep/scep"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestResendRacingItsFirstSending: a client that resends its request while
// the first sending is still being issued gets the certificate the first
// got, not a refusal for the challenge (or the renewal's claim) that the
// first sending spent meanwhile; one certificate is issued.
func TestResendRacingItsFirstSending(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		txs := &txCounter{Store: st}
		e := newTestEnvOn(t, txs)
		ca := e.cas[tenantA].Certificate()
		ra := e.raCert(tenantA)
		d := newDevice(t, rsaKey(t, 2048))
		enrolment := d.request(t, ra, scep.PKCSReq, subject("racing"), e.challenge(tenantA, "enrol-race"))
		e.race(t, txs, "a PKCSReq", func() reply { return d.enrol(t, e.url(tenantA), ca, enrolment) })

		oldCert, oldKey := e.enrolled(t, tenantA, "racing-renewal")
		r := renewer(t, oldCert, oldKey)
		renewal := r.request(t, ra, scep.RenewalReq, subject("racing-renewal"), "")
		e.race(t, txs, "a RenewalReq", func() reply { return r.enrol(t, e.url(tenantA), ca, renewal) })
	})
}

// race sends the same request twice: the second once the first is held
// inside its issuance and the second has reached its own transaction.
func (e *testEnv) race(t *testing.T, txs *txCounter, what string, send func() reply) {
	t.Helper()
	hold := &issuanceHold{entered: make(chan struct{}), release: make(chan struct{})}
	e.hold.Store(hold)
	issued := e.issuedCount()
	replies := make(chan reply, 2)
	go func() { replies <- send() }()
	<-hold.entered
	before := txs.n.Load()
	go func() { replies <- send() }()
	for deadline := time.Now().Add(10 * time.Second); txs.n.Load() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the resend never reached its transaction", what)
		}
	}
	close(hold.release)
	first, again := <-replies, <-replies
	if first.status != scep.SUCCESS || again.status != scep.SUCCESS {
		t.Fatalf("%s sent twice at once: %s %s and %s %s, want both SUCCESS", what, first.status, string(first.failInfo), again.status, string(again.failInfo))
	}
	if !first.cert.Equal(again.cert) || e.issuedCount() != issued+1 {
		t.Errorf("%s sent twice at once: %d certificates issued, the replies the same: %v", what, e.issuedCount()-issued, first.cert.Equal(again.cert))
	}
}

// issuanceHold stops an issuance in OnIssued, inside its transaction,
// until release is closed.
type issuanceHold struct{ entered, release chan struct{} }

// txCounter counts the write transactions begun on its store.
type txCounter struct {
	store.Store
	n atomic.Int64
}

func (c *txCounter) Tx(ctx context.Context, fn func(store.Queries) error) error {
	c.n.Add(1)
	return c.Store.Tx(ctx, fn)
}
