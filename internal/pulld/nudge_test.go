package pulld_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/mempubsub"

	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/metadatatest"
	"github.com/pushpull/pushpull/internal/testing/natstest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// nudgeLatency is how soon after a nudge a reconcile must have reached
// RESTARTING (pulld acts within a second of a push).
const nudgeLatency = time.Second

// fifo receives the lines RESTARTING writes to its NOTIFY_FIFO, with the
// time each arrived.
type fifo struct {
	path  string
	lines chan fifoLine
}

type fifoLine struct {
	text string
	at   time.Time
}

// newFIFO makes a FIFO and reads it until the test ends.
func newFIFO(t testing.TB) *fifo {
	t.Helper()
	f := &fifo{path: filepath.Join(t.TempDir(), "restarting.fifo"), lines: make(chan fifoLine, 1000)}
	if err := syscall.Mkfifo(f.path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for {
			r, err := os.Open(f.path) // blocks until a writer opens it
			if err != nil {
				return
			}
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				f.lines <- fifoLine{sc.Text(), time.Now()}
			}
			r.Close()
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		// Unblock a reader waiting in open.
		if w, err := os.OpenFile(f.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	return f
}

// next waits for the next line whose last field is want and returns when
// it came.
func (f *fifo) next(t testing.TB, want string) time.Time {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case l := <-f.lines:
			if f := strings.Fields(l.text); len(f) > 0 && f[len(f)-1] == want {
				return l.at
			}
		case <-deadline:
			t.Fatalf("RESTARTING did not signal %q within %v", want, wait)
		}
	}
}

// nudgeRig is a running pulld with one nudge source and an app serving,
// ready for pushes: a push changes the app's restart value and nudges.
type nudgeRig struct {
	h     *harness
	fifo  *fifo
	app   manifest.PackageName
	nudge func(t testing.TB) // delivers the nudge; nil when the manifest write is the nudge
}

// push writes a manifest that restarts the app with restart value n,
// nudges, and returns the time from the nudge to RESTARTING starting.
func (r *nudgeRig) push(t testing.TB, n int) time.Duration {
	t.Helper()
	e := r.entry(strconv.Itoa(n))
	var sent time.Time
	if r.nudge == nil {
		sent = time.Now()
		pulldtest.SetManifest(t, r.h.store, "web-1", e)
	} else {
		pulldtest.SetManifest(t, r.h.store, "web-1", e)
		sent = time.Now()
		r.nudge(t)
	}
	return r.fifo.next(t, "restart-"+strconv.Itoa(n)).Sub(sent)
}

func (r *nudgeRig) entry(restart string) manifest.Entry {
	e := r.h.entry(r.app)
	e.Config[pulldtest.NotifyKey] = r.fifo.path
	e.Config["RESTART_TAG"] = "restart-" + restart
	e.Restart = restart
	return e
}

// settle waits until the last push's cycle has finished, so the next push
// is not merged into it.
func (r *nudgeRig) settle(t testing.TB, n int) {
	t.Helper()
	pulldtest.WaitStatus(t, wait, func() (*manifest.Status, error) { return r.h.client.Status(t), nil }, func(st *manifest.Status) bool {
		es, ok := st.Lookup(r.app.App)
		return ok && es.State == manifest.StateServing && st.ManifestRevision >= int64(n)
	})
}

// nudgeSources are the ways to nudge pulld, each set up on a fresh pulld
// whose poll period is 1 h, so only the nudge can explain a prompt reconcile.
var nudgeSources = []struct {
	name  string
	setup func(t testing.TB) *nudgeRig
}{
	{"sighup", func(t testing.TB) *nudgeRig {
		h := s3Harness(t)
		return startRig(t, h, []string{"sighup"}, func(t testing.TB) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		})
	}},
	{"http", func(t testing.TB) *nudgeRig {
		h := s3Harness(t)
		return startRig(t, h, []string{"http"}, func(t testing.TB) { h.client.Nudge(t) })
	}},
	{"file", func(t testing.TB) *nudgeRig {
		h := newHarness(t, "file://"+t.TempDir())
		return startRig(t, h, []string{"file"}, nil)
	}},
	{"gce", func(t testing.TB) *nudgeRig {
		md := metadatatest.Start(t)
		md.Setenv(t)
		md.Set("instance/attributes/pushrev", "0")
		h := s3Harness(t)
		h.cfg.Nudge = []string{"gce"}
		n := 0
		return startRig(t, h, []string{"gce"}, func(t testing.TB) {
			n++
			md.Set("instance/attributes/pushrev", fmt.Sprintf("push-%d", n))
		})
	}},
	{"pubsub-mem", func(t testing.TB) *nudgeRig {
		url := fmt.Sprintf("mem://pulld-nudge-%d", time.Now().UnixNano())
		topic, err := pubsub.OpenTopic(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { topic.Shutdown(t.Context()) })
		h := s3Harness(t)
		h.cfg.Nudge = []string{url}
		return startRig(t, h, []string{"pubsub-mem"}, func(t testing.TB) {
			if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
				t.Fatal(err)
			}
		})
	}},
	{"pubsub-nats", func(t testing.TB) *nudgeRig {
		ns := natstest.Start(t)
		t.Setenv("NATS_SERVER_URL", ns.URL)
		const url = "nats://pushpull.nudge?natsv2=true"
		h := s3Harness(t)
		h.cfg.Nudge = []string{url}
		topic := ns.OpenTopic(t, url)
		r := startRig(t, h, []string{"pubsub-nats"}, func(t testing.TB) {
			if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
				t.Fatal(err)
			}
		})
		ns.WaitInterest(t, "pushpull.nudge")
		return r
	}},
}

// s3Harness is a harness on a fresh S3 bucket: no file watch, so the only
// nudge is the one under test.
func s3Harness(t testing.TB) *harness {
	t.Helper()
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	return newHarness(t, s3.Bucket(t, ""))
}

// startRig releases an app, starts pulld with sources established, deploys
// the app (push 0) and returns the rig.
func startRig(t testing.TB, h *harness, sources []string, nudge func(testing.TB)) *nudgeRig {
	t.Helper()
	r := &nudgeRig{h: h, fifo: newFIFO(t), nudge: nudge}
	r.app = deploytest.Build(t, h.store, "hello", 1, pulldtest.StepsApp("v1"))
	h.start(sources...)
	pulldtest.SetManifest(t, h.store, "web-1", r.entry("0"))
	if nudge != nil {
		nudge(t)
	}
	r.fifo.next(t, "restart-0")
	r.settle(t, 1)
	return r
}

// TestNudgeLatency checks, for every nudge source, that a push reaches
// RESTARTING within a second of the nudge while the poll period is 1 h.
func TestNudgeLatency(t *testing.T) {
	for _, src := range nudgeSources {
		t.Run(src.name, func(t *testing.T) {
			r := src.setup(t)
			for n := 1; n <= 3; n++ {
				time.Sleep(250 * time.Millisecond) // past the nudge rate limit
				if d := r.push(t, n); d > nudgeLatency {
					t.Fatalf("push %d: RESTARTING %v after the nudge, want within %v", n, d, nudgeLatency)
				}
				r.settle(t, n+1)
			}
			steps := r.h.steps.Take(t)
			want := pulldtest.Expect(r.app, "RESTART", "PRE_RESTART", "RESTARTING", "POST_RESTART")
			if got := steps[len(steps)-3:]; !slices.Equal(got, want) {
				t.Errorf("last push ran %q, want %q", got, want)
			}
		})
	}
}

// BenchmarkNudgeToRestarting measures, per nudge source, the time from a
// nudge to the RESTARTING script starting, over b.N pushes (use
// -benchtime=100x for 100), and reports its p50 and p99. Each push waits for
// the previous cycle to finish and for pulld's nudge rate limit (5/s), as
// pushes minutes apart would.
func BenchmarkNudgeToRestarting(b *testing.B) {
	for _, src := range nudgeSources {
		b.Run(src.name, func(b *testing.B) {
			r := src.setup(b)
			var lat []time.Duration
			n := 0
			for b.Loop() {
				n++
				b.StopTimer()
				time.Sleep(200 * time.Millisecond)
				b.StartTimer()
				lat = append(lat, r.push(b, n))
				b.StopTimer()
				r.settle(b, n+1)
				b.StartTimer()
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
