package pulld_test

import (
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// groupBackends are the real stores the group tests run on.
var groupBackends = []struct {
	name   string
	bucket func(t *testing.T) string
}{
	{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
	{"gcs", func(t *testing.T) string { g := testserver.StartGCS(t); g.Setenv(t); return g.Bucket(t, "") }},
	{"s3", func(t *testing.T) string { s := testserver.StartS3(t); s.Setenv(t); return s.Bucket(t, "") }},
}

// member is one pulld of a group test.
func member(t *testing.T, bucket, server string, groups ...string) *harness {
	t.Helper()
	h := newHarness(t, bucket)
	h.cfg.Server, h.cfg.Groups = server, groups
	return h
}

// objects counts the objects under prefix.
func objects(t *testing.T, store *blobstore.Store, prefix string) []string {
	t.Helper()
	var names []string
	var err error
	switch prefix {
	case blobstore.ServersPrefix:
		names, err = store.ListServers(t.Context())
	case blobstore.GroupsPrefix:
		names, err = store.ListGroups(t.Context())
	}
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestGroupsEndToEnd runs three pullds of group web on each real store:
// members with no manifest of their own install the group's entries; a
// server entry overrides the group's on that host only; two groups naming
// one env hold it on the host in both, reported, while its other envs
// proceed; a host that joins later converges with no write; removing the
// group's entry stops the env on every member it reached. Each group push
// is one write of the group's manifest.
func TestGroupsEndToEnd(t *testing.T) {
	for _, b := range groupBackends {
		t.Run(b.name, func(t *testing.T) {
			bucket := b.bucket(t)
			web1 := member(t, bucket, "web-1", "web", "canary")
			web2 := member(t, bucket, "web-2", "web")
			store := web1.store
			hello1 := deploytest.Build(t, store, "hello", 1, pulldtest.StepsApp("v1"))
			hello2 := deploytest.Build(t, store, "hello", 2, pulldtest.StepsApp("v2"))
			api1 := deploytest.Build(t, store, "api", 1, pulldtest.StepsApp("a1"))
			// Every member's scripts log to web-1's step log: a group's
			// entries are the same for all.
			entry := func(p manifest.PackageName) manifest.Entry {
				return manifest.Entry{Package: p, Config: web1.steps.Config()}
			}

			// One write of groups/web.json; no server manifest exists.
			pulldtest.SetDocument(t, store, manifest.Group("web"), entry(hello1))
			web1.start("http")
			web2.start("http")
			web1.client.Nudge(t)
			web2.client.Nudge(t)
			for _, h := range []*harness{web1, web2} {
				st := h.waitEnv("hello", manifest.StateServing, hello1.String())
				if es, _ := st.Lookup("hello"); es.Source != "group:web" {
					t.Errorf("%s hello source %q, want group:web", h.cfg.Server, es.Source)
				}
			}
			if got := objects(t, store, blobstore.ServersPrefix); len(got) != 0 {
				t.Fatalf("server manifests %q exist: a group push writes only the group's", got)
			}
			if st := web1.client.Status(t); len(st.Groups) != 2 || st.Groups[0].Name != "web" || st.Groups[0].Revision != 1 || !st.Groups[1].Missing {
				t.Errorf("web-1 status groups %+v, want web at revision 1 and canary missing", st.Groups)
			}

			// web-2 pins hello2 in its own manifest: only web-2 moves.
			pulldtest.SetManifest(t, store, "web-2", entry(hello2))
			web2.client.Nudge(t)
			st := web2.waitEnv("hello", manifest.StateServing, hello2.String())
			if es, _ := st.Lookup("hello"); es.Source != "server" {
				t.Errorf("web-2 hello source %q, want server", es.Source)
			}

			// canary names hello too: web-1 is in both, so its hello is
			// held and reported; canary's api proceeds.
			pulldtest.SetDocument(t, store, manifest.Group("canary"), entry(hello2), entry(api1))
			web1.client.Nudge(t)
			st = web1.waitEnv("api", manifest.StateServing, api1.String())
			es, _ := st.Lookup("hello")
			if es.Serving != hello1.String() || !strings.Contains(es.Held, "web, canary") {
				t.Errorf("web-1 hello %+v, want still hello1, held naming web and canary", es)
			}

			// A host that joins later converges by itself: no write.
			before := objects(t, store, blobstore.ServersPrefix)
			web3 := member(t, bucket, "web-3", "web")
			web3.start("http")
			web3.client.Nudge(t)
			web3.waitEnv("hello", manifest.StateServing, hello1.String())
			if after := objects(t, store, blobstore.ServersPrefix); len(after) != len(before) {
				t.Errorf("server manifests %q → %q: joining wrote one", before, after)
			}

			// Removing web's entry stops hello where web's entry served,
			// and ends web-1's conflict: canary's hello applies there.
			pulldtest.SetDocument(t, store, manifest.Group("web"))
			for _, h := range []*harness{web1, web2, web3} {
				h.client.Nudge(t)
			}
			web3.waitEnv("hello", manifest.StateStopped, "")
			web1.waitEnv("hello", manifest.StateServing, hello2.String())
			web2.waitEnv("hello", manifest.StateServing, hello2.String()) // its own pin
		})
	}
}
