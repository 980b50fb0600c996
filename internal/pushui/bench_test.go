package pushui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/manifest"
)

// bigFleet returns a Server whose cache holds servers × apps, each app with
// pkgs packages, every server running every app, with a status: one env in
// seven drifting, one in eleven failed (with script output), one server in
// thirteen stale. Nothing is read from a bucket: this measures rendering.
func bigFleet(b testing.TB, servers, apps, pkgs int) *Server {
	b.Helper()
	ctx := context.Background()
	store, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	conf := &manifest.PushConfig{Servers: map[string][]string{}, Groups: map[string][]string{}}
	appNames := make([]string, apps)
	for a := range apps {
		appNames[a] = fmt.Sprintf("app%02d", a)
	}
	serverNames := make([]string, servers)
	for i := range servers {
		serverNames[i] = fmt.Sprintf("srv-%04d", i)
		if i < 1000 {
			// The config stays under the bucket's 1 MiB bound on a
			// document: a fleet this size allows apps by group.
			conf.Servers[serverNames[i]] = appNames
		}
	}
	for g := range 20 {
		conf.Groups[fmt.Sprintf("group-%02d", g)] = appNames
	}
	s, err := newServer(ctx, store, Options{Store: store, Config: conf, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return fixtureNow }})
	if err != nil {
		b.Fatal(err)
	}

	st := &fleetview.State{Servers: map[string]*fleetview.Server{}, Order: serverNames, Apps: map[string]*fleetview.App{}, AsOf: fixtureNow}
	for a, app := range appNames {
		names := make([]manifest.PackageName, pkgs)
		for p := range pkgs {
			commit := fmt.Sprintf("%02x%010x", a, pkgs-p)
			names[p], err = manifest.NewPackageName(app, fixtureNow.Add(-time.Duration(p)*time.Hour), commit, p%17 == 3, manifest.FormatZstd)
			if err != nil {
				b.Fatal(err)
			}
		}
		st.Apps[app] = &fleetview.App{Names: names}
	}
	output := "step output line\n"
	for len(output) < 10<<10 {
		output += output
	}
	for i, name := range serverNames {
		m := &manifest.Manifest{Revision: 7}
		status := &manifest.Status{Server: name, PulldVersion: "v1.2.3", Host: manifest.HostInfo{Hostname: name + ".example.internal"},
			Time: fixtureNow.Add(-time.Minute), PollSeconds: 300, ManifestRevision: 7, Groups: []manifest.GroupStatus{{Name: fmt.Sprintf("group-%02d", i%20)}}}
		if i%13 == 0 {
			status.Time = fixtureNow.Add(-time.Hour)
		}
		for a, app := range appNames {
			desired := st.Apps[app].Names[(i+a)%5]
			m.Packages = append(m.Packages, manifest.Entry{Package: desired})
			es := manifest.EnvStatus{Env: app, App: app, Desired: desired.String(), Serving: desired.String(), State: manifest.StateServing, Step: "SERVING_BUILD", Updated: fixtureNow.Add(-3 * time.Hour)}
			switch k := i*apps + a; {
			case k%11 == 0:
				es.State, es.Step, es.Error, es.Output = manifest.StateFailed, "POST_RESTART", "POST_RESTART exited with status 1", output
			case k%7 == 0:
				es.Serving = st.Apps[app].Names[(i+a)%5+1].String()
				es.State, es.Step = manifest.StateDeploying, "DOWNLOADING"
			}
			status.Envs = append(status.Envs, es)
		}
		st.Servers[name] = &fleetview.Server{Name: name, Manifest: m, Version: blobstore.Version(fmt.Sprintf("%032x", i)), Status: status}
	}
	st.Groups = map[string]*fleetview.Group{}
	for g := range conf.Groups {
		m := &manifest.Manifest{Revision: 3}
		for _, app := range appNames {
			m.Packages = append(m.Packages, manifest.Entry{Package: st.Apps[app].Names[0]})
		}
		st.Groups[g] = &fleetview.Group{Name: g, Manifest: m, Version: blobstore.Version("g-" + g)}
		st.GroupOrder = append(st.GroupOrder, g)
	}
	slices.Sort(st.GroupOrder)
	s.svc.View.Replace(st)
	return s
}

// discard is a ResponseWriter that keeps only the status and the size.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header { return d.h }

func (d *discard) WriteHeader(code int) { d.code = code }

func (d *discard) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

// BenchmarkMainPage renders the main page, unfiltered, for 1,000 servers ×
// 10 apps × 200 packages from a prepared cache. The target is ≤ 150 ms.
func BenchmarkMainPage(b *testing.B) {
	s := bigFleet(b, 1000, 10, 200)
	benchPages(b, s, "/", "/?app=app03", "/?server=srv-00")
}

// BenchmarkFleetPages renders, from a prepared cache of 10,000 servers × 10
// apps in 20 groups (each server also pinning its apps in its own
// manifest, the costliest merge), the pages an operator of a big fleet
// opens: the main page (one page of servers and the groups' summary), the
// groups, one group (its summary and one page of members) and
// GET /api/groups. The target is ≤ 300 ms each.
func BenchmarkFleetPages(b *testing.B) {
	s := bigFleet(b, 10000, 10, 50)
	benchPages(b, s, "/", "/?group=group-07", "/groups", "/groups/group-07", "/api/groups")
}

func benchPages(b *testing.B, s *Server, paths ...string) {
	for _, q := range paths {
		b.Run("path="+q, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, q, nil)
			var size int
			for b.Loop() {
				w := &discard{h: http.Header{}}
				s.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				size = w.n
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB/page")
		})
	}
}

// BenchmarkAPIServers is GET /api/servers over the same fleet.
func BenchmarkAPIServers(b *testing.B) {
	s := bigFleet(b, 1000, 10, 200)
	req := httptest.NewRequest(http.MethodGet, "/api/servers", nil)
	for b.Loop() {
		w := &discard{h: http.Header{}}
		s.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// TestBigFleetPage checks that the benchmark's page is the page it claims
// to be: every server rendered, with the drift, failures and staleness the
// fleet was built with.
func TestBigFleetPage(t *testing.T) {
	s := bigFleet(t, 100, 10, 20)
	w := do(t, s, http.MethodGet, "/", nil)
	wantCode(t, w, http.StatusOK)
	doc := parseHTML(t, w.Body.Bytes())
	for _, c := range []struct {
		sel  string
		want int
	}{
		{"section.server", 100},
		{"section.server tbody tr[data-app]", 1000},
		{"section.server.stale", 8},                          // i%13 == 0 for i < 100
		{"tr.failure-row details.err a.output", 1000/11 + 1}, // k%11 == 0 for k < 1000; output loaded on demand
	} {
		if n := len(queryAll(t, doc, c.sel)); n != c.want {
			t.Errorf("%s: %d, want %d", c.sel, n, c.want)
		}
	}
}
