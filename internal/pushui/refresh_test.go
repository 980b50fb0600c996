package pushui

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// refreshRig is pushui on an S3 server behind a counting proxy, with a
// fleet of hosts, each with a manifest and a status, in one group.
type refreshRig struct {
	px     *deploytest.Proxy
	direct *blobstore.Store // the test's writes, not counted
	s      *Server
	pkg    manifest.PackageName
}

func newRefreshRig(t testing.TB, hosts int) *refreshRig {
	t.Helper()
	s3 := testserver.StartS3(t)
	s3.Setenv(t)
	bucket := s3.Bucket(t, "")
	px := deploytest.StartProxy(t, s3.Endpoint)
	direct, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	r := &refreshRig{px: px, direct: direct}
	r.pkg = deploytest.Build(t, direct, "hello", 1, nil)
	g := manifest.Group("web")
	if _, err := direct.UpdateManifestAt(t.Context(), g, "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: r.pkg}}})); err != nil {
		t.Fatal(err)
	}
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("web-%05d", i)
	}
	fleetview.ForEach(hosts, 32, func(i int) {
		if _, err := direct.UpdateManifestAt(t.Context(), manifest.Server(names[i]), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{}})); err != nil {
			t.Error(err)
		}
		if err := direct.WriteStatus(t.Context(), r.status(names[i], manifest.StateServing)); err != nil {
			t.Error(err)
		}
	})
	counted, err := blobstore.Open(t.Context(), strings.Replace(bucket, s3.Endpoint, px.URL, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counted.Close() })
	conf := &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{"web": {"hello"}}}
	if r.s, err = newServer(t.Context(), counted, Options{Store: counted, Config: conf, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	return r
}

// status is what pulld writes for server: no time (the object's
// modification time is the heartbeat), hello in state.
func (r *refreshRig) status(server string, state manifest.State) *manifest.Status {
	return &manifest.Status{Server: server, PollSeconds: 300, Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}},
		Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", Desired: r.pkg.String(), Serving: r.pkg.String(), State: state, Source: "group:web"}}}
}

// refresh refreshes pushui's cache and returns the requests it made, by
// method and folder.
func (r *refreshRig) refresh(t testing.TB) []string {
	t.Helper()
	before := len(r.px.Log())
	if err := r.s.svc.View.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, req := range r.px.Log()[before:] {
		method, path, _ := strings.Cut(req, " ")
		if q := strings.Index(path, "?"); q >= 0 {
			path = path[:q]
		}
		out = append(out, method+" "+path)
	}
	return out
}

// TestRefreshCost checks what a refresh asks of the bucket: its listings
// (servers, statuses, groups, and the app's packages) and a GET for each
// document that changed, nothing for the hosts that did not. A status
// rewritten with the same bytes (pulld's heartbeat) is not read again, but
// its time moves on.
func TestRefreshCost(t *testing.T) {
	const hosts = 60
	r := newRefreshRig(t, hosts)
	// newServer refreshed once, reading every document.
	if st := r.s.svc.View.Load(); len(st.Order) != hosts || st.Servers["web-00001"].Status == nil || st.Groups["web"].Manifest == nil {
		t.Fatalf("after the first refresh the cache holds %d servers", len(st.Order))
	}
	listings := r.refresh(t)
	for _, req := range listings {
		if !strings.HasPrefix(req, "GET /") || strings.Contains(req, ".json") {
			t.Errorf("a refresh of an unchanged fleet read a document: %s (all: %q)", req, listings)
		}
	}
	if len(listings) > 4 {
		t.Errorf("a refresh of an unchanged fleet made %d requests, want its 4 listings: %q", len(listings), listings)
	}

	before := r.s.svc.View.Load().Servers["web-00003"].Status.Time
	time.Sleep(1100 * time.Millisecond)
	if err := r.direct.WriteStatus(t.Context(), r.status("web-00003", manifest.StateServing)); err != nil {
		t.Fatal(err)
	}
	if got := r.refresh(t); len(got) != len(listings) {
		t.Errorf("after a heartbeat: %q, want only the listings", got)
	}
	if after := r.s.svc.View.Load().Servers["web-00003"].Status.Time; !after.After(before) {
		t.Errorf("heartbeat: status time %v, was %v; want it moved on", after, before)
	}

	if err := r.direct.WriteStatus(t.Context(), r.status("web-00007", manifest.StateFailed)); err != nil {
		t.Fatal(err)
	}
	got := r.refresh(t)
	if len(got) != len(listings)+1 || !strings.HasSuffix(got[len(got)-1], "status/web-00007.json") && !containsSuffix(got, "status/web-00007.json") {
		t.Errorf("after one status changed: %q, want the listings and one read of it", got)
	}
	if es, _ := r.s.svc.View.Load().Servers["web-00007"].Status.Lookup("hello"); es.State != manifest.StateFailed {
		t.Errorf("web-00007 hello %+v: the change was not read", es)
	}
}

func containsSuffix(reqs []string, suffix string) bool {
	for _, r := range reqs {
		if strings.HasSuffix(r, suffix) {
			return true
		}
	}
	return false
}

// BenchmarkRefresh measures a refresh of an unchanged fleet on the S3
// test server: its duration and its bucket requests (requests/refresh),
// which must not grow with the number of hosts but by one listing request
// per thousand documents. PUSHPULL_REFRESH_HOSTS picks the sizes
// (default 1000 and 10000).
func BenchmarkRefresh(b *testing.B) {
	for _, hosts := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			r := newRefreshRig(b, hosts)
			var reqs int
			for b.Loop() {
				reqs += len(r.refresh(b))
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "requests/refresh")
		})
	}
}
