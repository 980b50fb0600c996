package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/skia"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// Names in Skia push's format, as its server/{host}.json lists them.
const (
	skiaHello1 = "hello/hello:alice@build-1.corp:2014-12-09T18:45:59Z:2d9eea8b121f61ac8f1ab853fedc30fc092b3f70.deb"
	skiaHello2 = "hello/hello:alice@build-1.corp:2014-12-09T19:05:02Z:7e0ff6059e653eb75a36efb621d0fd66d1ced433.deb"
	skiaBroken = "hello/hello:bob@build-2:2014-12-10T08:00:00Z:52a8ec0da66d45a58274947080870b742404a92f.deb"
	skiaFake   = "hello/hello:alice@build-1.corp:2014-12-11T00:00:00Z:0123456789ab.deb"
	skiaTwin   = "hello/hello:carol@build-3:2014-12-09T20:05:02+01:00:7e0ff6059e65.deb"
)

// putSkia writes an object as Skia push's release.sh stored it: under
// key, with Skia's metadata keys.
func putSkia(t *testing.T, b *blob.Bucket, key string, data []byte, md map[string]string) {
	t.Helper()
	if err := b.WriteAll(t.Context(), key, data, &blob.WriterOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns every key of b with the sha256 of its content and its
// metadata, to show that nothing in it changed.
func snapshot(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		obj, err := it.Next(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.ReadAll(t.Context(), obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := b.Attributes(t.Context(), obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		out = append(out, obj.Key+" "+hex.EncodeToString(sum[:])+" "+attrs.Metadata[skia.MetaNote])
	}
	return out
}

// TestImportSkia makes a small Skia push bucket (Skia's names and metadata
// keys, a placeholder, a name with no .deb, a .deb whose metadata
// contradicts its name), imports it into an empty pushpull bucket on
// file:// and on fake-gcs-server, checks the packages, manifests, push
// config and notes, imports again (nothing changes), checks that the old
// bucket is as it was, and has pulld -once install from the import with
// the real dpkg.
func TestImportSkia(t *testing.T) {
	for _, tc := range []struct {
		name    string
		buckets func(t *testing.T) (from, to string)
	}{
		{"file", func(t *testing.T) (string, string) {
			return "file://" + t.TempDir(), "file://" + filepath.Join(t.TempDir(), "new")
		}},
		{"gcs", func(t *testing.T) (string, string) {
			g := testserver.StartGCS(t)
			g.Setenv(t)
			return g.Bucket(t, "skia-push"), g.Bucket(t, "pushpull")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dpkg := deploytest.NewDpkg(t)
			fromURL, toURL := tc.buckets(t)
			from, _, err := blobstore.Create(t.Context(), fromURL)
			if err != nil {
				t.Fatal(err)
			}
			defer from.Close()
			inst := t.TempDir()
			deb := func(version string) []byte {
				return deploytest.PackDeb(t, deploytest.Name(t, "hello", 1, manifest.FormatDeb), map[string]string{
					inst + "/opt/hello/version": version + "\n",
					"debian/control":            "Package: pushpull-test-skia-hello\n",
				})
			}
			skiaMeta := func(user, when, hash, note string) map[string]string {
				return map[string]string{skia.MetaAppName: "hello", skia.MetaUserID: user, skia.MetaHash: hash, skia.MetaDateTime: when, skia.MetaDirty: "false", skia.MetaNote: note, skia.MetaServices: "hello.service"}
			}
			b := from.Bucket()
			putSkia(t, b, skia.DebsPrefix+skiaHello1, deb("v1"), skiaMeta("alice@build-1.corp", "2014-12-09T18:45:59Z", "2d9eea8b121f61ac8f1ab853fedc30fc092b3f70", "first"))
			putSkia(t, b, skia.DebsPrefix+skiaHello2, deb("v2"), skiaMeta("alice@build-1.corp", "2014-12-09T19:05:02Z", "7e0ff6059e653eb75a36efb621d0fd66d1ced433", "second"))
			putSkia(t, b, skia.DebsPrefix+skiaBroken, deb("v3"), skiaMeta("bob@build-2", "2014-12-10T08:00:00Z", "ffffffffffffffffffffffffffffffffffffffff", "lies"))
			// Not a Debian package, though named one.
			putSkia(t, b, skia.DebsPrefix+skiaFake, []byte("just text"), skiaMeta("alice@build-1.corp", "2014-12-11T00:00:00Z", "", ""))
			// The same instant and commit as hello2, in another zone, by
			// someone else: the same pushpull name, other content.
			putSkia(t, b, skia.DebsPrefix+skiaTwin, deb("twin"), map[string]string{skia.MetaAppName: "hello"})
			putSkia(t, b, skia.ServersPrefix+"web-1.json", []byte(`["`+skiaHello2+`", "logserver/", "`+skiaHello2+`"]`), nil)
			putSkia(t, b, skia.ServersPrefix+"web-2.json", []byte(`["`+skiaHello1+`", "push/push:jc@h:2014-12-09T18:45:59Z:2d9eea8b121f61ac8f1ab853fedc30fc092b3f70.deb"]`), nil)
			before := snapshot(t, b)

			var out bytes.Buffer
			pub, keyFile := makeKey(t)
			cfg := Config{Bucket: toURL, ImportSkia: fromURL, User: "importer", Out: &out, SignKey: keyFile, Create: true}
			// Three objects cannot be imported: the import says which and
			// why, does the rest, and fails (exit 1).
			if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("import: %v, want ErrIncomplete\n%s", err, out.String())
			}
			for _, want := range []string{
				`server/web-1.json: dropped the placeholders of logserver (no version chosen)`,
				`server/web-2.json: dropped 1 names whose .deb was not imported: "push/push:jc@h:`,
				"debs/" + skiaBroken + " not imported: its hash is \"ffff",
				"debs/" + skiaFake + " not imported: not a Debian package",
				"debs/" + skiaTwin + " not imported: collides with hello/hello-20141209T190502Z-7e0ff6059e65.deb",
				"services hello.service are not carried over",
				"config/push.json written",
				"2 packages copied, 0 packages already there; 2 server manifests written, 0 server manifests unchanged",
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("summary lacks %q:\n%s", want, out.String())
				}
			}

			to, err := blobstore.Open(t.Context(), toURL)
			if err != nil {
				t.Fatal(err)
			}
			defer to.Close()
			p2 := manifest.PackageName{App: "hello", Built: time.Date(2014, 12, 9, 19, 5, 2, 0, time.UTC), Commit: "7e0ff6059e65", Format: manifest.FormatDeb}
			info, err := to.StatPackage(t.Context(), p2)
			if err != nil {
				t.Fatalf("imported %s: %v", p2, err)
			}
			if m := info.Meta; m.Commit != "7e0ff6059e653eb75a36efb621d0fd66d1ced433" || m.User != "alice" || m.Host != "build-1.corp" ||
				m.Note != "second" || m.Format != manifest.FormatDeb || m.SHA256 != deploytest.SHA256(deb("v2")) {
				t.Errorf("metadata of %s: %+v", p2, m)
			}
			m, _, err := to.ReadManifest(t.Context(), manifest.Server("web-1"))
			if err != nil || len(m.Packages) != 1 || m.Packages[0].Package != p2 {
				t.Fatalf("servers/web-1.json: %+v, %v", m, err)
			}
			conf, _, err := to.ReadPushConfig(t.Context())
			verifySignature(t, to, p2, info.Meta.SHA256, pub)
			if err != nil || conf == nil || !slices.Equal(conf.Servers["web-1"], []string{"hello", "logserver"}) || !slices.Equal(conf.Servers["web-2"], []string{"hello"}) {
				t.Errorf("push config: %+v, %v", conf, err)
			}
			if recs, _ := to.ListAudit(t.Context(), manifest.Server("web-1"), 5); len(recs) != 1 || recs[0].User != "importer" {
				t.Errorf("audit of web-1: %+v", recs)
			}

			out.Reset()
			if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("second import: %v", err)
			}
			if !strings.Contains(out.String(), "0 packages copied, 2 packages already there; 0 server manifests written, 2 server manifests unchanged") {
				t.Errorf("a second import is not idempotent:\n%s", out.String())
			}
			if after := snapshot(t, b); !slices.Equal(before, after) {
				t.Errorf("the Skia bucket changed:\n before %q\n after  %q", before, after)
			}

			// pulld installs from the imported bucket, with dpkg.
			root := t.TempDir()
			pc := pulld.Config{Bucket: toURL, Server: "web-1", Root: root, Once: true}
			if err := pulld.Run(t.Context(), pc); err != nil {
				t.Fatalf("pulld -once on the import: %v", err)
			}
			if st, v := dpkg.Status("pushpull-test-skia-hello"); st != "install ok installed" {
				t.Errorf("dpkg after pulld: %q %q", st, v)
			}
			if got, _ := os.ReadFile(filepath.Join(inst, "opt/hello/version")); string(got) != "v2\n" {
				t.Errorf("installed version %q, want v2", got)
			}
			if _, err := os.Stat(filepath.Join(root, "envs/hello/builds", p2.ID(), pkgformat.DebFile)); err != nil {
				t.Errorf("the .deb is not kept for rollback: %v", err)
			}
		})
	}
}

// TestImportRefusals: an import into its own bucket (however the URL is
// spelt) and flags an import does not take are usage errors, before
// anything is read.
func TestImportRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"same URL", Config{ImportSkia: "file:///tmp/x", Bucket: "file:///tmp/x"}},
		{"same directory spelt otherwise", Config{ImportSkia: "file:///tmp/x", Bucket: "file:///tmp/./x/"}},
		{"inside it", Config{ImportSkia: "file:///tmp/x", Bucket: "file:///tmp/x/new"}},
		{"same GCS bucket with a prefix", Config{ImportSkia: "gs://skia-push", Bucket: "gs://skia-push?prefix=pp/"}},
		{"-app", Config{ImportSkia: "gs://a", Bucket: "gs://b", App: "hello"}},
		{"-deploy", Config{ImportSkia: "gs://a", Bucket: "gs://b", Deploy: []string{"web-1"}}},
		{"-dir", Config{ImportSkia: "gs://a", Bucket: "gs://b", Dir: "/nonexistent"}},
		{"-format deb", Config{ImportSkia: "gs://a", Bucket: "gs://b", Format: manifest.FormatDeb}},
		{"-o json", Config{ImportSkia: "gs://a", Bucket: "gs://b", JSON: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Out = io.Discard
			if _, err := Run(t.Context(), tc.cfg); !errors.Is(err, cli.ErrUsage) {
				t.Errorf("Run = %v, want a usage error", err)
			}
		})
	}
}
