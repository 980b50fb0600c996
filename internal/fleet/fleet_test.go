package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/manifest"
)

const (
	helloV1 = "hello/hello-20261122T101500Z-111111111111.tar.zst"
	helloV2 = "hello/hello-20261123T101500Z-222222222222.tar.zst"
	apiV1   = "api/api-20261122T101500Z-333333333333.tar.zst"
	missing = "hello/hello-20261124T101500Z-444444444444.tar.zst"
)

// recorder is a Nudger that remembers whom it nudged.
type recorder struct {
	mu      sync.Mutex
	servers []string
	groups  []string
}

func (r *recorder) Nudge(_ context.Context, servers ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers = append(r.servers, servers...)
	return nil
}

func (r *recorder) NudgeGroup(_ context.Context, group string, _ int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, group)
	return nil
}

func pkg(t *testing.T, s string) manifest.PackageName {
	t.Helper()
	p, err := manifest.ParsePackageName(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bucket returns a file:// bucket holding helloV1, helloV2 and apiV1, and
// the push config conf when it is not "".
func bucket(t *testing.T, conf string) *blobstore.Store {
	t.Helper()
	s, err := blobstore.Open(t.Context(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, n := range []string{helloV1, helloV2, apiV1} {
		p := pkg(t, n)
		pw, err := s.NewPackageWriter(t.Context(), p, manifest.PackageMeta{App: p.App})
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte("x"))
		if err := pw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if conf != "" {
		c, err := manifest.ParsePushConfig([]byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WritePushConfig(t.Context(), c, ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func set(p manifest.PackageName) func(*manifest.Manifest) error {
	return func(m *manifest.Manifest) error { m.SetPackage(p); return nil }
}

// TestEditOutcomes is the table of what an Edit does, by push config,
// existing manifest and change: written or refused (and why), with the
// audit record and nudge that go with a write.
func TestEditOutcomes(t *testing.T) {
	const conf = `{"servers": {"web-1": ["hello"], "web-2": ["hello", "api"]}, "groups": {"web": ["hello"]}}`
	srv, grp := manifest.Server, manifest.Group
	tests := []struct {
		name     string
		conf     string // "" = no push config in the bucket
		existing string // manifest of the target before, "" = none
		target   manifest.Target
		apply    string // package to set; "remove" removes hello
		wantErr  error
		changed  bool
	}{
		{"allowed, new manifest", conf, "", srv("web-1"), helloV1, nil, true},
		{"allowed, update", conf, `{"packages":["` + helloV1 + `"]}`, srv("web-1"), helloV2, nil, true},
		{"same package: nothing written", conf, `{"packages":["` + helloV1 + `"]}`, srv("web-1"), helloV1, nil, false},
		{"app not allowed", conf, "", srv("web-1"), apiV1, fleet.ErrNotAllowed, false},
		{"server not in config", conf, "", srv("web-typo"), helloV1, fleet.ErrNotAllowed, false},
		{"server not in config, has a manifest", conf, `{"packages":[]}`, srv("old-1"), helloV1, fleet.ErrNotAllowed, false},
		{"removal from a server not in config", conf, `{"packages":["` + helloV1 + `"]}`, srv("old-1"), "remove", nil, true},
		{"missing package", conf, "", srv("web-1"), missing, fleet.ErrNoPackage, false},
		{"no config, existing manifest", "", `{"packages":["` + helloV1 + `"]}`, srv("web-1"), apiV1, nil, true},
		{"no config, no manifest", "", "", srv("web-typo"), helloV1, fleet.ErrNotAllowed, false},
		{"invalid manifest in the bucket", conf, `{"packages":null}`, srv("web-1"), helloV1, manifest.ErrInvalidManifest, false},
		{"group allowed, new manifest", conf, "", grp("web"), helloV1, nil, true},
		{"group: app not allowed", conf, "", grp("web"), apiV1, fleet.ErrNotAllowed, false},
		{"group not in config", conf, "", grp("db"), helloV1, fleet.ErrNotAllowed, false},
		{"a server's allow-list does not cover a group of its name", conf, "", grp("web-2"), apiV1, fleet.ErrNotAllowed, false},
		{"group removal", conf, `{"packages":["` + helloV1 + `"]}`, grp("web"), "remove", nil, true},
		{"no config, existing group manifest", "", `{"packages":["` + helloV1 + `"]}`, grp("web"), apiV1, nil, true},
		{"no config, no group manifest", "", "", grp("web"), helloV1, fleet.ErrNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, latest := range []bool{true, false} {
				s := bucket(t, tt.conf)
				ctx := t.Context()
				key, _ := blobstore.ManifestKey(tt.target)
				var v blobstore.Version
				if tt.existing != "" {
					var err error
					if v, err = s.Write(ctx, key, []byte(tt.existing), ""); err != nil {
						t.Fatal(err)
					}
				}
				before, _, _ := s.Read(ctx, key)
				nudged := &recorder{}
				w := fleet.New(s, fleet.Options{Nudger: nudged, Logger: slog.New(slog.DiscardHandler)})
				apply := func(m *manifest.Manifest) error { m.RemoveApp("hello"); return nil }
				if tt.apply != "remove" {
					apply = set(pkg(t, tt.apply))
				}
				c, err := w.Edit(ctx, fleet.Edit{Target: tt.target, User: "ann", Action: "test", Apply: apply, Latest: latest, IfVersion: v})
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("latest=%v: Edit error %v, want %v", latest, err, tt.wantErr)
				}
				after, _, _ := s.Read(ctx, key)
				if c.Changed != tt.changed || bytes.Equal(before, after) == tt.changed {
					t.Fatalf("latest=%v: Changed=%v, bucket changed=%v; want %v", latest, c.Changed, !bytes.Equal(before, after), tt.changed)
				}
				recs, _ := s.ListAudit(ctx, tt.target, 10)
				nudges := nudged.servers
				if tt.target.IsGroup() {
					nudges = nudged.groups
				}
				if tt.changed != (len(recs) == 1) || tt.changed != slices.Equal(nudges, []string{tt.target.Name}) {
					t.Fatalf("latest=%v: %d audit records, nudged %v and groups %v; want one of each only for a write", latest, len(recs), nudged.servers, nudged.groups)
				}
				if len(recs) == 1 && recs[0].Target() != tt.target {
					t.Fatalf("latest=%v: audit record for %v, want %v", latest, recs[0].Target(), tt.target)
				}
				if tt.changed {
					if c.Existed != (tt.existing != "") || (c.Before == nil) == c.Existed || c.Version == "" {
						t.Fatalf("latest=%v: Change = %+v", latest, c)
					}
					if _, cur, _ := s.ReadManifest(ctx, tt.target); cur != c.Version {
						t.Fatalf("latest=%v: Change.Version %q, bucket at %q", latest, c.Version, cur)
					}
				}
			}
		})
	}
}

// TestEditStaleVersion: a change based on an older version is refused
// with ErrConflict and writes nothing; a latest change is re-applied.
func TestEditStaleVersion(t *testing.T) {
	s := bucket(t, `{"servers": {"web-1": ["hello", "api"]}}`)
	ctx := t.Context()
	w := fleet.New(s, fleet.Options{})
	c1, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, helloV1))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, apiV1)), IfVersion: c1.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, helloV2)), IfVersion: c1.Version}); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("edit at a stale version: %v, want ErrConflict", err)
	}
	c, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, helloV2)), Latest: true})
	if err != nil || !c.Changed || len(c.After.Packages) != 2 {
		t.Fatalf("latest edit = %+v, %v; want both apps kept", c, err)
	}
}

// TestConfigFollowsTheBucket: a config changed in the bucket (by another
// pushui, or by hand) is obeyed by the next Edit.
func TestConfigFollowsTheBucket(t *testing.T) {
	s := bucket(t, `{"servers": {"web-1": ["hello"]}}`)
	ctx := t.Context()
	w := fleet.New(s, fleet.Options{})
	if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, apiV1)), Latest: true}); !errors.Is(err, fleet.ErrNotAllowed) {
		t.Fatalf("api before the config allows it: %v", err)
	}
	_, v, _ := w.Config(ctx)
	if err := s.Put(ctx, blobstore.PushConfigKey, []byte(`{"servers": {"web-1": ["hello", "api"]}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, apiV1)), Latest: true}); err != nil {
		t.Fatalf("api after the config allows it: %v", err)
	}
	if _, err := w.PutConfig(ctx, "ann", &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}, v); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("PutConfig at a stale version: %v, want ErrConflict", err)
	}
	_, v, _ = w.Config(ctx)
	if _, err := w.PutConfig(ctx, "ann", &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}, v); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListConfigAudit(ctx, 10)
	if err != nil || len(recs) != 1 || recs[0].User != "ann" || recs[0].ConfigBefore == nil || len(recs[0].ConfigAfter.Servers["web-1"]) != 1 {
		t.Fatalf("config audit = %+v, %v", recs, err)
	}
	if err := s.Put(ctx, blobstore.PushConfigKey, []byte(`{"servers": {"web-1": ["hello"]}, "servers": {}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Edit(ctx, fleet.Edit{Target: manifest.Server("web-1"), Apply: set(pkg(t, helloV2)), Latest: true}); err == nil {
		t.Fatal("an invalid push config in the bucket allowed an edit")
	}
}
