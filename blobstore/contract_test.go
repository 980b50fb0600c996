package blobstore_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// backend is one bucket under test. count, when set, returns the bytes the
// bucket's server has sent so far, so tests can prove no body moved.
type backend struct {
	name  string
	open  func(t *testing.T) *blobstore.Store
	count func() int64
	// path, on file:// backends, returns the file that holds key, for
	// writing it as cp, an editor or config management would.
	path func(s *blobstore.Store, key string) string
}

// TestContract runs the same suite against every backend: mem://, file://,
// a real GCS API server (fake-gcs-server) and a real S3 server (versitygw).
func TestContract(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range contractCases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

var contractCases = []struct {
	name string
	run  func(t *testing.T, b backend)
}{
	{"RoundTrip", testRoundTrip},
	{"NotFound", testNotFound},
	{"LostUpdate", testLostUpdate},
	{"IfAbsentRace", testIfAbsentRace},
	{"Changed", testChanged},
	{"UpdateManifest", testUpdateManifest},
	{"Packages", testPackages},
	{"PackageSealRace", testPackageSealRace},
	{"PackageAbort", testPackageAbort},
	{"StatusAndAudit", testStatusAndAudit},
	{"ConditionalWritesHonoured", testConditionalWritesHonoured},
	{"PushConfig", testPushConfig},
	{"TooLarge", testTooLarge},
	{"Listings", testListings},
}

// testTooLarge: documents are at most MaxDocumentSize. Larger writes are
// refused; a larger manifest put there by other means is refused whole as
// invalid, naming its size, without its body being read.
func testTooLarge(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	huge := bytes.Repeat([]byte(" "), blobstore.MaxDocumentSize+1)
	if err := s.Put(ctx, "status/web-1.json", huge); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("Put of %d bytes: %v, want ErrTooLarge", len(huge), err)
	}
	if _, err := s.Write(ctx, "servers/web-1.json", huge, ""); !errors.Is(err, blobstore.ErrTooLarge) {
		t.Fatalf("Write of %d bytes: %v, want ErrTooLarge", len(huge), err)
	}
	key, _ := blobstore.ManifestKey(manifest.Server("big"))
	big := append([]byte(`{"packages": []}`), bytes.Repeat([]byte(" "), 8<<20)...)
	if err := s.Bucket().WriteAll(ctx, key, big, nil); err != nil {
		t.Fatal(err)
	}
	var before int64
	if b.count != nil {
		before = b.count()
	}
	_, v, err := s.ReadManifest(ctx, manifest.Server("big"))
	if !errors.Is(err, manifest.ErrInvalidManifest) || !errors.Is(err, blobstore.ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(len(big), " bytes")) || v == "" {
		t.Fatalf("ReadManifest of %d bytes = %q, %v; want an invalid manifest naming its size, with its version", len(big), v, err)
	}
	if changed, cur, err := s.ChangedManifest(ctx, manifest.Server("big"), v); err != nil || changed || cur != v {
		t.Fatalf("Changed of the large manifest = %v, %q, %v", changed, cur, err)
	}
	if b.count != nil {
		if sent := b.count() - before; sent > 2<<20 {
			t.Fatalf("refusing an 8 MiB manifest moved %d bytes", sent)
		}
	}
}

// testListings: ListManifests and ListStatuses give each document's name,
// its Version as Changed gives it, the MD5 of its content and when it was
// written; a status rewritten with the same bytes keeps its Digest (its
// Modified moves on), and ReadStatus takes a status's time from the object
// when the document has none.
func testListings(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	for _, srv := range []string{"web-2", "web-1"} {
		if _, err := blobstore.WriteManifest(s, ctx, manifest.Server(srv), &manifest.Manifest{Packages: []manifest.Entry{}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := blobstore.WriteManifest(s, ctx, manifest.Group("web"), &manifest.Manifest{Packages: []manifest.Entry{}}, ""); err != nil {
		t.Fatal(err)
	}
	listed, err := s.ListManifests(ctx, manifest.KindServer)
	if err != nil || len(listed) != 2 || listed[0].Name != "web-1" || listed[1].Name != "web-2" {
		t.Fatalf("ListManifests(servers) = %+v, %v", listed, err)
	}
	for _, l := range listed {
		key, _ := blobstore.ManifestKey(manifest.Server(l.Name))
		data, v, err := s.Read(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(data)
		if l.Version != v || l.Digest != hex.EncodeToString(sum[:]) || l.Modified.IsZero() {
			t.Errorf("%s listed as %+v; Read gives version %q, content MD5 %x", l.Name, l, v, sum)
		}
	}
	if groups, err := s.ListManifests(ctx, manifest.KindGroup); err != nil || len(groups) != 1 || groups[0].Name != "web" {
		t.Errorf("ListManifests(groups) = %+v, %v", groups, err)
	}

	st := &manifest.Status{Server: "web-1", PollSeconds: 60, Envs: []manifest.EnvStatus{}}
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	first, err := s.ListStatuses(ctx)
	if err != nil || len(first) != 1 || first[0].Digest == "" {
		t.Fatalf("ListStatuses = %+v, %v", first, err)
	}
	got, err := s.ReadStatus(ctx, "web-1")
	if err != nil || got.Time.IsZero() || got.Time.Sub(first[0].Modified).Abs() > time.Second {
		t.Errorf("ReadStatus time %v, want the object's (%v); err %v", got.Time, first[0].Modified, err)
	}
	time.Sleep(1100 * time.Millisecond) // past the modification times' resolution
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	again, err := s.ListStatuses(ctx)
	if err != nil || len(again) != 1 || again[0].Digest != first[0].Digest || !again[0].Modified.After(first[0].Modified) {
		t.Errorf("after a heartbeat: %+v, before %+v (%v): want the same digest, a later time", again, first, err)
	}
}

// testPushConfig: config/push.json is absent until written, written
// if-absent and conditionally after that, and its audit records are kept
// apart from every server's.
func testPushConfig(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	if c, v, err := s.ReadPushConfig(ctx); c != nil || v != "" || err != nil {
		t.Fatalf("ReadPushConfig of an empty bucket = %v, %q, %v", c, v, err)
	}
	c := &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}
	v1, err := s.WritePushConfig(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WritePushConfig(ctx, c, ""); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	c.Servers["web-2"] = []string{"hello"}
	v2, err := s.WritePushConfig(ctx, c, v1)
	if err != nil {
		t.Fatal(err)
	}
	if changed, cur, err := s.ChangedPushConfig(ctx, v1); err != nil || !changed || cur != v2 {
		t.Fatalf("ChangedPushConfig = %v, %q, %v", changed, cur, err)
	}
	got, v, err := s.ReadPushConfig(ctx)
	if err != nil || v != v2 || len(got.Servers) != 2 {
		t.Fatalf("ReadPushConfig = %v, %q, %v", got, v, err)
	}
	if err := s.AppendAudit(ctx, &manifest.AuditRecord{Time: time.Now(), User: "ann", Action: "put push config", Config: true, ConfigAfter: c}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListConfigAudit(ctx, 10)
	if err != nil || len(recs) != 1 || !recs[0].Config || len(recs[0].ConfigAfter.Servers) != 2 {
		t.Fatalf("ListConfigAudit = %+v, %v", recs, err)
	}
	if servers, err := s.ListServers(ctx); err != nil || len(servers) != 0 {
		t.Fatalf("the config shows up as servers: %v, %v", servers, err)
	}
}

// testConditionalWritesHonoured: every backend of the suite passes the
// probe that pushui and release run when they start.
func testConditionalWritesHonoured(t *testing.T, b backend) {
	s := b.open(t)
	if err := s.CheckConditionalWrites(t.Context()); err != nil {
		t.Fatalf("CheckConditionalWrites: %v", err)
	}
	assertNoUploads(t, s)
}

func testRoundTrip(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	v1, err := s.Write(ctx, "k/one.json", []byte("first"), "")
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	data, v, err := s.Read(ctx, "k/one.json")
	if err != nil || string(data) != "first" || v != v1 {
		t.Fatalf("Read = %q, %q, %v; want first, %q", data, v, err, v1)
	}
	v2, err := s.Write(ctx, "k/one.json", []byte("second"), v1)
	if err != nil {
		t.Fatalf("conditional Write: %v", err)
	}
	if v2 == v1 {
		t.Fatalf("version did not change after a write: %q", v2)
	}
	data, v, err = s.Read(ctx, "k/one.json")
	if err != nil || string(data) != "second" || v != v2 {
		t.Fatalf("Read = %q, %q, %v; want second, %q", data, v, err, v2)
	}
	if err := s.Put(ctx, "k/one.json", []byte("third")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if data, _, _ := s.Read(ctx, "k/one.json"); string(data) != "third" {
		t.Fatalf("after Put, Read = %q", data)
	}
}

func testNotFound(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	if _, _, err := s.Read(ctx, "missing.json"); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Read missing: %v, want ErrNotFound", err)
	}
	if changed, v, err := s.Changed(ctx, "missing.json", ""); err != nil || changed || v != "" {
		t.Fatalf("Changed missing = %v, %q, %v; want false, \"\", nil", changed, v, err)
	}
	if _, err := s.Write(ctx, "missing.json", []byte("x"), "g123"); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("version-matching write of a missing object: %v, want ErrConflict", err)
	}
	p := mustName(t, "hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	if _, err := s.ReadSignature(ctx, p); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("ReadSignature of unsigned package: %v, want ErrNotFound", err)
	}
	if _, _, err := s.OpenPackage(ctx, p); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("OpenPackage missing: %v, want ErrNotFound", err)
	}
	m, v, err := s.ReadManifest(ctx, manifest.Server("web-1"))
	if err != nil || v != "" || len(m.Packages) != 0 {
		t.Fatalf("ReadManifest missing = %+v, %q, %v; want empty", m, v, err)
	}
}

// testLostUpdate: writers that read the same version race; exactly one wins.
func testLostUpdate(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	v0, err := s.Write(ctx, "servers/race.json", []byte("v0"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, writers := range []int{2, 16} {
		t.Run(fmt.Sprint(writers), func(t *testing.T) {
			_, v, err := s.Read(ctx, "servers/race.json")
			if err != nil {
				t.Fatal(err)
			}
			_ = v0
			errs := make([]error, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					_, errs[i] = s.Write(ctx, "servers/race.json", []byte(fmt.Sprintf("writer %d of %d", i, writers)), v)
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("writers %d and %d both succeeded: a lost update", won, i)
				case err == nil:
					won = i
				case !errors.Is(err, blobstore.ErrConflict):
					t.Fatalf("writer %d: %v, want ErrConflict", i, err)
				}
			}
			if won < 0 {
				t.Fatal("no writer succeeded")
			}
			data, _, _ := s.Read(ctx, "servers/race.json")
			if want := fmt.Sprintf("writer %d of %d", won, writers); string(data) != want {
				t.Fatalf("content %q, want the winner's %q", data, want)
			}
		})
	}
}

func testIfAbsentRace(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Write(ctx, "once.json", []byte(fmt.Sprint(i)), "")
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, err := range errs {
		if err == nil {
			winners++
		} else if !errors.Is(err, blobstore.ErrConflict) {
			t.Fatalf("writer %d: %v, want ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners of a write-if-absent race, want 1", winners)
	}
}

func testChanged(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	big := bytes.Repeat([]byte("0123456789abcdef"), 32<<10) // 512 KiB body
	v, err := s.Write(ctx, "servers/poll.json", big, "")
	if err != nil {
		t.Fatal(err)
	}
	var before int64
	if b.count != nil {
		before = b.count()
	}
	for range 5 {
		changed, cur, err := s.Changed(ctx, "servers/poll.json", v)
		if err != nil || changed || cur != v {
			t.Fatalf("Changed after no write = %v, %q, %v; want false, %q", changed, cur, err, v)
		}
	}
	if b.count != nil {
		if sent := b.count() - before; sent > 16<<10 {
			t.Fatalf("5 unchanged polls of a 512 KiB object moved %d bytes: the body was transferred", sent)
		}
	}
	v2, err := s.Write(ctx, "servers/poll.json", append(big, '!'), v)
	if err != nil {
		t.Fatal(err)
	}
	changed, cur, err := s.Changed(ctx, "servers/poll.json", v)
	if err != nil || !changed || cur != v2 {
		t.Fatalf("Changed after a write = %v, %q, %v; want true, %q", changed, cur, err, v2)
	}
	// A rewrite with the same bytes is still a change on GCS and S3 (new
	// generation / same ETag!) — manifests avoid the ABA case by bumping
	// their revision on every write, tested in UpdateManifest.
}

func testUpdateManifest(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			app := fmt.Sprintf("app%d", i)
			p := mustName(t, app+"/"+app+"-20261122T101500Z-0123456789ab.tar.zst")
			_, errs[i] = s.UpdateManifest(ctx, manifest.Server("web-1"), func(m *manifest.Manifest, _ bool) error {
				m.SetPackage(p)
				return nil
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	m, v, err := s.ReadManifest(ctx, manifest.Server("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Packages) != n || m.Revision != n {
		t.Fatalf("after %d concurrent updates: %d packages, revision %d; an update was lost:\n%s", n, len(m.Packages), m.Revision, m.Marshal())
	}
	// A no-op update writes nothing.
	u, err := s.UpdateManifest(ctx, manifest.Server("web-1"), func(m *manifest.Manifest, existed bool) error {
		if !existed {
			t.Error("fn told the manifest did not exist")
		}
		return nil
	})
	if err != nil || u.Version != v || u.Changed || !u.Existed {
		t.Fatalf("no-op update: version %q -> %+v, %v", v, u, err)
	}
	// A manifest that does not parse is never overwritten.
	key, _ := blobstore.ManifestKey(manifest.Server("bad"))
	if err := s.Put(ctx, key, []byte(`{"packages": [42]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateManifest(ctx, manifest.Server("bad"), func(*manifest.Manifest, bool) error { return nil }); !errors.Is(err, manifest.ErrInvalidManifest) {
		t.Fatalf("update of an invalid manifest: %v, want ErrInvalidManifest", err)
	}
	if data, _, _ := s.Read(ctx, key); string(data) != `{"packages": [42]}` {
		t.Fatalf("invalid manifest was rewritten: %q", data)
	}
	servers, err := s.ListServers(ctx)
	if err != nil || strings.Join(servers, ",") != "bad,web-1" {
		t.Fatalf("ListServers = %v, %v", servers, err)
	}
}

func testPackages(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	built := time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)
	var want []string
	for i, day := range []int{0, 2, 1} {
		name, err := manifest.NewPackageName("hello", built.AddDate(0, 0, day), fmt.Sprintf("%012x", i+1), i == 2, manifest.FormatZstd)
		if err != nil {
			t.Fatal(err)
		}
		body := bytes.Repeat([]byte{byte(i)}, 100_000+i)
		pw, err := s.NewPackageWriter(ctx, name, manifest.PackageMeta{App: "hello", Commit: name.Commit, Branch: "main", Note: "note with spaces & ünicode", User: "ci", Built: name.Built, Dirty: name.Dirty})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.OpenPackage(ctx, name); !errors.Is(err, blobstore.ErrNotFound) {
			t.Fatalf("package visible before Close: %v", err)
		}
		if err := pw.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		sum := sha256.Sum256(body)
		if pw.SHA256() != hex.EncodeToString(sum[:]) {
			t.Fatalf("SHA256 = %s, want %x", pw.SHA256(), sum)
		}
		r, info, err := s.OpenPackage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, body) || info.Meta.SHA256 != pw.SHA256() || info.Size != int64(len(body)) {
			t.Fatalf("read back %d bytes, sha %s, size %d", len(got), info.Meta.SHA256, info.Size)
		}
		want = append(want, name.String())
	}
	if err := s.WriteSignature(ctx, mustName(t, want[0]), []byte("sig")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListPackages(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list {
		got = append(got, p.Name.String())
		if p.Meta.Note != "note with spaces & ünicode" || p.Meta.Branch != "main" || p.Meta.Commit != p.Name.Commit || p.Meta.Dirty != p.Name.Dirty || !p.Meta.Built.Equal(p.Name.Built) || p.Meta.Format != manifest.FormatZstd {
			t.Errorf("metadata of %s not returned by the listing: %+v", p.Name, p.Meta)
		}
	}
	if wantOrder := []string{want[1], want[2], want[0]}; strings.Join(got, " ") != strings.Join(wantOrder, " ") {
		t.Fatalf("ListPackages order:\n got %v\nwant %v (newest first)", got, wantOrder)
	}
	apps, err := s.ListApps(ctx)
	if err != nil || strings.Join(apps, ",") != "hello" {
		t.Fatalf("ListApps = %v, %v", apps, err)
	}
	// Writing an existing name fails early.
	if _, err := s.NewPackageWriter(ctx, mustName(t, want[0]), manifest.PackageMeta{}); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("second writer of an existing package: %v, want ErrConflict", err)
	}
}

// testPackageSealRace: several releases of the same name stream at once;
// exactly one wins, the others get ErrConflict, and the stored package is
// the winner's, bytes and metadata.
func testPackageSealRace(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	name := mustName(t, "api/api-20261122T101500Z-0123456789ab.tar.gz")
	const n = 4
	errs := make([]error, n)
	sums := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			pw, err := s.NewPackageWriter(ctx, name, manifest.PackageMeta{App: "api", Note: fmt.Sprint(i)})
			if err != nil {
				errs[i] = err
				return
			}
			pw.Write(bytes.Repeat([]byte{byte(i)}, 100_000))
			errs[i] = pw.Close()
			sums[i] = pw.SHA256()
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("releases %d and %d of one name both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, blobstore.ErrConflict):
			t.Fatalf("release %d: %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no release succeeded")
	}
	r, info, err := s.OpenPackage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	r.Close()
	sum := sha256.Sum256(body)
	if info.Meta.Note != fmt.Sprint(winner) || info.Meta.SHA256 != sums[winner] || hex.EncodeToString(sum[:]) != sums[winner] {
		t.Fatalf("stored package is not the winner's: %+v", info.Meta)
	}
	// Once sealed, the name stays taken.
	if _, err := s.NewPackageWriter(ctx, name, manifest.PackageMeta{}); !errors.Is(err, blobstore.ErrConflict) {
		t.Fatalf("release after the race: %v, want ErrConflict", err)
	}
	assertNoUploads(t, s)
}

func testPackageAbort(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	name := mustName(t, "api/api-20261122T101500Z-0123456789ab.tar.zst")
	pw, err := s.NewPackageWriter(ctx, name, manifest.PackageMeta{App: "api"})
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(bytes.Repeat([]byte("x"), 1<<20))
	pw.Abort()
	if _, err := s.StatPackage(ctx, name); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("aborted package exists: %v", err)
	}
	assertNoUploads(t, s)
}

func assertNoUploads(t *testing.T, s *blobstore.Store) {
	t.Helper()
	it := s.Bucket().List(nil)
	for {
		o, err := it.Next(t.Context())
		if err != nil {
			break
		}
		if strings.HasPrefix(o.Key, "uploads/") {
			t.Errorf("staging object left behind: %s", o.Key)
		}
	}
}

func testStatusAndAudit(t *testing.T, b backend) {
	s, ctx := b.open(t), t.Context()
	st := &manifest.Status{Server: "web-1", Time: time.Now().UTC().Truncate(time.Second), Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", State: manifest.StateServing}}}
	if err := s.WriteStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadStatus(ctx, "web-1")
	if err != nil || !bytes.Equal(got.Marshal(), st.Marshal()) {
		t.Fatalf("ReadStatus = %+v, %v", got, err)
	}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		r := &manifest.AuditRecord{Time: base.Add(time.Duration(i) * time.Minute), User: "ann", Server: "web-1", Action: fmt.Sprint("change ", i)}
		if err := s.AppendAudit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Same instant: a second record must not overwrite the first.
	if err := s.AppendAudit(ctx, &manifest.AuditRecord{Time: base, User: "bob", Server: "web-1", Action: "same time"}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListAudit(ctx, manifest.Server("web-1"), 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, "|"); got != "change 2|change 1|change 0|same time" {
		t.Fatalf("audit, newest first: %s", got)
	}
}

func mustName(t *testing.T, s string) manifest.PackageName {
	t.Helper()
	p, err := manifest.ParsePackageName(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
