package pulld_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// idleRig is a pulld serving one app from an S3 bucket behind a counting
// proxy, with its poll and heartbeat periods scaled down by scale from the
// defaults, so that an hour of idling passes in time.Hour/scale.
type idleRig struct {
	h     *harness
	px    *deploytest.Proxy
	scale int
}

func startIdle(t testing.TB, scale int, groups ...string) *idleRig {
	t.Helper()
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	direct := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	h := newHarness(t, strings.Replace(direct, s3.Endpoint, px.URL, 1))
	h.cfg.Poll = pulld.DefaultPoll / time.Duration(scale)
	h.cfg.Heartbeat = pulld.DefaultHeartbeat / time.Duration(scale)
	h.cfg.Groups = groups
	app := deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	pulldtest.SetManifest(t, h.store, "web-1", h.entry(app))
	for _, g := range groups {
		if _, err := h.store.UpdateManifestAt(t.Context(), manifest.Group(g), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{}})); err != nil {
			t.Fatal(err)
		}
	}
	h.start("http")
	h.waitEnv("hello", manifest.StateServing, app.String())
	// Let the deploy's own status writes pass before measuring.
	time.Sleep(2 * h.cfg.Poll)
	return &idleRig{h: h, px: px, scale: scale}
}

// measure idles for d and returns the proxy's counts over that time and
// the requests forwarded.
func (r *idleRig) measure(d time.Duration) (deploytest.Counts, []string) {
	before, logBefore := r.px.Counts(), len(r.px.Log())
	time.Sleep(d)
	after := r.px.Counts()
	return deploytest.Counts{
		Requests: after.Requests - before.Requests,
		Failed:   after.Failed - before.Failed,
		BytesIn:  after.BytesIn - before.BytesIn,
		BytesOut: after.BytesOut - before.BytesOut,
	}, r.px.Log()[logBefore:]
}

// TestIdleRequests checks what an idle pulld asks of the bucket: nothing but
// the attributes of its manifest and of each of its groups' on each poll
// (never a body, never a package) and a status write per heartbeat, which
// by default is every poll.
func TestIdleRequests(t *testing.T) {
	for _, groups := range [][]string{nil, {"web", "canary"}} {
		t.Run(fmt.Sprintf("groups=%d", len(groups)), func(t *testing.T) {
			r := startIdle(t, 3000, groups...) // poll and heartbeat 100 ms
			_, log := r.measure(3 * time.Second)
			heads := map[string]int{}
			var puts int
			for _, req := range log {
				switch {
				case strings.HasPrefix(req, "HEAD ") && strings.HasSuffix(req, "/servers/web-1.json"):
					heads["web-1"]++
				case strings.HasPrefix(req, "HEAD ") && strings.Contains(req, "/groups/"):
					heads[strings.TrimSuffix(req[strings.LastIndex(req, "/")+1:], ".json")]++
				case strings.HasPrefix(req, "PUT ") && strings.HasSuffix(req, "/status/web-1.json"):
					puts++
				default:
					t.Errorf("unexpected request while idle: %s", req)
				}
			}
			// 3 s is 30 polls (±20%); each poll checks every document once
			// and writes the status (the heartbeat is the poll period).
			for _, doc := range append([]string{"web-1"}, groups...) {
				// (±1: the window may end between a poll's checks)
				if n := heads[doc]; n < 20 || n > 40 || n < heads["web-1"]-1 || n > heads["web-1"]+1 {
					t.Errorf("%s: %d checks in 3s at a 100ms poll (the server manifest: %d)", doc, n, heads["web-1"])
				}
			}
			if puts < 20 || puts > 40 || puts > heads["web-1"]+1 {
				t.Errorf("%d status writes in 3s at a 100ms heartbeat (%d polls)", puts, heads["web-1"])
			}
		})
	}
}

// BenchmarkIdleCost extrapolates the bucket requests and bytes of one idle
// host per hour at the default poll and heartbeat (5 min) from a run with
// both periods scaled down 3000 times. Budget: ≤ 26 requests an hour (12
// checks, 12 status writes).
func BenchmarkIdleCost(b *testing.B) {
	const scale = 3000
	r := startIdle(b, scale)
	var total deploytest.Counts
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		c, _ := r.measure(3 * time.Second)
		elapsed += time.Since(start)
		total.Requests += c.Requests
		total.BytesIn += c.BytesIn
		total.BytesOut += c.BytesOut
	}
	hours := elapsed.Hours() * scale // simulated hours
	b.ReportMetric(float64(total.Requests)/hours, "requests/h")
	b.ReportMetric(float64(total.BytesOut)/hours, "bytes-down/h")
	b.ReportMetric(float64(total.BytesIn)/hours, "bytes-up/h")
	b.ReportMetric(float64(total.BytesIn+total.BytesOut)/hours, "bytes/h")
	b.ReportMetric(0, "ns/op")
}
