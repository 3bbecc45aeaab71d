package audit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

// BenchmarkChainVerifier is the verifier's own cost per entry, without a
// database: hashing and linking.
func BenchmarkChainVerifier(b *testing.B) {
	entries, _ := buildChain(b, store.AuditHead{}, 10_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := entries[i%len(entries)]
		if i%len(entries) == 0 {
			b.StopTimer()
			v := newChainVerifier(testTenant, nil, 0, nil)
			b.StartTimer()
			benchVerifier = v
		}
		benchVerifier.addEntry(e)
	}
	if benchVerifier.failed() {
		b.Fatal(*benchVerifier.report.Problem)
	}
}

var benchVerifier *chainVerifier

// BenchmarkVerifyExport is the offline verifier's cost; one op verifies a
// file of 10,000 entries.
func BenchmarkVerifyExport(b *testing.B) {
	const n = 10_000
	entries, _ := buildChain(b, store.AuditHead{}, n)
	file := []byte(strings.Join(exportLines(b, store.AuditHead{}, entries, nil), "\n"))
	b.SetBytes(int64(len(file)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := VerifyExport(bytes.NewReader(file), nil)
		if err != nil || rep.Problem != nil {
			b.Fatal(err, rep.Problem)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
