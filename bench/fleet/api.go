package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"time"

	"github.com/steward-mdm/steward/internal/api"
)

// api serves the admin API over TLS on loopback and times device list
// pages for several filter pairs, walking each listing's cursors to the
// end and starting over until enough requests were timed.
func (b *bench) api() {
	srv := api.New(api.Options{Store: b.st, IAM: b.iam, Signer: b.signer, Privacy: b.priv, MDM: b.mdm, Logger: b.quiet,
		Devices: b.fleet.Devices, Actions: b.fleet.Actions, Compliance: b.fleet.Compliance})
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	client := ts.Client() // keeps its connection alive between requests, as a real client would

	pairs := []struct{ name, query string }{
		{"platform + compliance", "platform=ios&compliance=noncompliant"},
		{"ownership + last_seen_before", "ownership=personal&last_seen_before=30d"},
		{"os_min + sort -last_seen", "os_min=17.4&sort=-last_seen"},
		{"group + sort os_version", "group=" + url.QueryEscape(b.groupID) + "&sort=os_version"},
	}
	base := ts.URL + "/api/v1/tenants/" + b.tenant + "/devices?limit=100&"
	for _, p := range pairs {
		if b.groupID == "" && p.name == "group + sort os_version" {
			continue // the groups phase did not run
		}
		l := &lister{client: client, url: base + p.query, secret: b.secret}
		for range *warmup {
			l.next()
		}
		lat := make([]time.Duration, 0, *requests)
		for range *requests {
			lat = append(lat, l.next())
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
		fmt.Printf("GET devices?%s: %d matching, %d pages per listing; p50 %s p95 %s p99 %s max %s\n", p.query, l.matched, l.pages,
			ms(pct(.50)), ms(pct(.95)), ms(pct(.99)), ms(lat[len(lat)-1]))
		b.add("API list, "+p.name, "p99 < 30 ms", "p50 %s, p95 %s, p99 %s, max %s (%d requests, %d matching)",
			ms(pct(.50)), ms(pct(.95)), ms(pct(.99)), ms(lat[len(lat)-1]), len(lat), l.matched)
	}
}

// lister walks one listing page by page, over and over.
type lister struct {
	client *http.Client
	url    string
	secret string
	cursor string
	// matched and pages describe the first complete walk.
	matched, pages int
	walked         bool
	seen           int
	walkPages      int
}

// next fetches the next page and returns how long the request took, from
// sending it to having read the whole body.
func (l *lister) next() time.Duration {
	target := l.url
	if l.cursor != "" {
		target += "&cursor=" + url.QueryEscape(l.cursor)
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	check(err)
	req.Header.Set("Authorization", "Bearer "+l.secret)
	start := time.Now()
	resp, err := l.client.Do(req)
	check(err)
	var page api.List[api.DeviceView]
	decodeErr := json.NewDecoder(resp.Body).Decode(&page)
	_, _ = io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		fatal(fmt.Errorf("GET %s: status %d", target, resp.StatusCode))
	}
	check(decodeErr)
	l.seen += len(page.Items)
	l.walkPages++
	l.cursor = page.NextCursor
	if l.cursor == "" { // the end: start over
		if !l.walked {
			l.matched, l.pages, l.walked = l.seen, l.walkPages, true
		}
		l.seen, l.walkPages = 0, 0
	}
	return took
}
