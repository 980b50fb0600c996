package rollout_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// costRig is a controller on a real S3 server behind a counting proxy,
// with finished rollouts in its history and, when running is set, one
// rollout under way.
type costRig struct {
	s  *sim
	d  *rollout.Driver
	px *deploytest.Proxy
}

func newCostRig(tb testing.TB, s3 *testserver.S3, finished int, running bool) *costRig {
	direct := s3.Bucket(tb, "")
	px := deploytest.StartProxy(tb, s3.Endpoint)
	s := newSimAt(tb, 10, strings.Replace(direct, s3.Endpoint, px.URL, 1))
	v1 := deploytest.Build(tb, s.store, "hello", 1, nil)
	v2 := deploytest.Build(tb, s.store, "hello", 2, nil)
	s.setGroup(v1)
	writeHistory(tb, s, finished, v2, v1)
	d := s.driver("pushui-a")
	if running {
		if _, err := d.Start(tb.Context(), manifest.RolloutStrategy{Group: "web", Package: v2, Canary: 1, PauseAfterCanary: true, MinHealthyTime: manifest.Duration(time.Hour)}, "ann"); err != nil {
			tb.Fatal(err)
		}
	}
	// The first tick adopts what has no marker and learns what ended.
	if err := d.Tick(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return &costRig{s: s, d: d, px: px}
}

// writeHistory writes n finished rollouts of other group envs (as a year
// of rollouts would leave them), each its group env's current one, in
// parallel.
func writeHistory(tb testing.TB, s *sim, n int, p, prev manifest.PackageName) {
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				env := fmt.Sprintf("env%d", i%50)
				r := s.record("old", env, fmt.Sprintf("20250101t000000-%06d", i), p, prev)
				r.State = manifest.RolloutSucceeded
				r.History[0].Outcome = manifest.StepDone
				if _, err := s.store.WriteRollout(tb.Context(), r, ""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	for i := range min(n, 50) {
		env := fmt.Sprintf("env%d", i)
		last := i + (n-1-i)/50*50
		if _, err := s.store.WriteCurrentRollout(tb.Context(), "old", env, fmt.Sprintf("20250101t000000-%06d", last), ""); err != nil {
			tb.Fatal(err)
		}
	}
}

// perTick returns the bucket requests of ticks ticks, 15 s apart.
func (r *costRig) perTick(tb testing.TB, ticks int) float64 {
	before := r.px.Counts().Requests
	for range ticks {
		if err := r.d.Tick(tb.Context()); err != nil {
			tb.Fatal(err)
		}
		r.s.now = r.s.now.Add(15 * time.Second)
	}
	return float64(r.px.Counts().Requests-before) / float64(ticks)
}

// TestTickCostIgnoresHistory measures the controller's bucket requests
// per tick on a real S3 server, idle and with a rollout under way, with no
// finished rollout and with hundreds: they must be the same, since a tick
// reads the markers of the group envs and the records that are active
// only (BenchmarkTick measures 10,000).
func TestTickCostIgnoresHistory(t *testing.T) {
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("running=%v", running), func(t *testing.T) {
			empty := newCostRig(t, s3, 0, running).perTick(t, 8)
			full := newCostRig(t, s3, 300, running).perTick(t, 8)
			t.Logf("requests per tick: %.2f with no history, %.2f with 300 finished rollouts", empty, full)
			// The 300 finished rollouts are in 50 group envs: their
			// markers are one listing page, as no marker at all is.
			if full != empty {
				t.Errorf("requests per tick with 300 finished rollouts %.2f, want %.2f as with none", full, empty)
			}
		})
	}
}

// BenchmarkTick reports the controller's bucket requests per tick (and
// its time) with no finished rollouts and with 10,000, idle and with one
// rollout running, on a real S3 server.
func BenchmarkTick(b *testing.B) {
	s3 := testserver.StartS3(b)
	s3.Setenv(b)
	for _, running := range []bool{false, true} {
		for _, finished := range []int{0, 10000} {
			b.Run(fmt.Sprintf("running=%v/finished=%d", running, finished), func(b *testing.B) {
				r := newCostRig(b, s3, finished, running)
				b.ResetTimer()
				reqs := r.perTick(b, b.N)
				b.ReportMetric(reqs, "requests/tick")
			})
		}
	}
}
