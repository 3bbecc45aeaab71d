package mdmproto

import (
	"strings"
	"testing"
)

// BenchmarkDecodeHostile measures what a hostile body costs the decoder
// (B/op is the memory it allocates): refused by its weight before the
// parser sees it.
//
//	go test ./internal/apple/mdmproto -run XXX -bench DecodeHostile -benchmem
func BenchmarkDecodeHostile(b *testing.B) {
	dicts := func(n int) string { return "<array>" + strings.Repeat("<dict/>", n) + "</array>" }
	profiles := result("ProfileList", kraw("ProfileList", dicts(249_980)))
	checkOut := doc(kv("MessageType", "CheckOut"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID), kraw("Padding", dicts(149_500)))
	b.Run("result of 249,980 empty profiles", func(b *testing.B) {
		for b.Loop() {
			_ = decodeResult(profiles)
		}
	})
	b.Run("check-out with 149,500 dictionaries", func(b *testing.B) {
		for b.Loop() {
			_ = decodeCheckin(checkOut)
		}
	})
}

// BenchmarkDecodeLargeAppList is the cost of the largest answer a device
// sends: a Mac's 4,000 apps, every key Apple documents.
func BenchmarkDecodeLargeAppList(b *testing.B) {
	body := appListResult(4000)
	for b.Loop() {
		r, err := DecodeResult(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeInstalledApplicationList(r); err != nil {
			b.Fatal(err)
		}
	}
}
