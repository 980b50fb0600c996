package pkgformat

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/internal/testing/unprivileged"
	"github.com/pushpull/pushpull/manifest"
)

// ent is one tar entry of a test archive.
type ent struct {
	name string
	typ  byte
	mode int64
	body string // contents of a regular file
	link string // target of a symlink or hard link
}

func file(name string, mode int64, body string) ent {
	return ent{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func dir(name string, mode int64) ent { return ent{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}

var mtime = time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)

// tarball returns the uncompressed tar stream of ents.
func tarball(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: mtime, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("tar body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compress compresses a tar stream in format.
func compress(t testing.TB, format manifest.Format, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch format {
	case manifest.FormatZstd:
		w, err = zstd.NewWriter(&b)
	case manifest.FormatGzip:
		w = gzip.NewWriter(&b)
	default:
		t.Fatalf("format %q", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func archive(t testing.TB, format manifest.Format, ents ...ent) []byte {
	t.Helper()
	return compress(t, format, tarball(t, ents...))
}

// sandbox returns an empty extraction directory inside a parent directory
// holding nothing else, and a check that the parent still holds only it.
func sandbox(t *testing.T) (string, func()) {
	t.Helper()
	parent := t.TempDir()
	dst := filepath.Join(parent, "build")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst, func() {
		t.Helper()
		names, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 1 || names[0].Name() != "build" {
			var got []string
			for _, n := range names {
				got = append(got, n.Name())
			}
			t.Errorf("parent of the extraction dir holds %v, want only [build]", got)
		}
	}
}

var formats = []manifest.Format{manifest.FormatZstd, manifest.FormatGzip}

func TestExtractRoundTrip(t *testing.T) {
	ents := []ent{
		dir("teletraan/", 0o755),
		file("teletraan/RESTARTING", 0o755, "#!/bin/sh\necho restart\n"),
		file("teletraan/config.yaml.tmpl", 0o640, "level: {$TELETRAAN_LOG_LEVEL:info}\n"),
		file("bin/app", 0o755, strings.Repeat("binary", 10000)), // implicit parent dir
		dir("a/b/c/", 0o700),
		file("a/b/c/deep.txt", 0o600, "deep"),
		file("a/empty", 0o644, ""),
		symlink("a/b/up", "../empty"),
		symlink("current-bin", "bin/app"),
		symlink("dangling", "not/there/yet"),
		hardlink("bin/app2", "bin/app"),
		dir("ro/", 0o555),
		file("ro/inside", 0o444, "read only in a read-only dir"),
		file("./dotslash", 0o644, "x"),
		dir("./", 0o700), // the destination itself: left alone
	}
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			dst, check := sandbox(t)
			defer check()
			st, err := Extract(bytes.NewReader(archive(t, format, ents...)), format, dst, Limits{})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(dst, "ro"), 0o755) })
			want := Stats{Files: 8, Dirs: 6, Symlinks: 3, Bytes: int64(len("#!/bin/sh\necho restart\n") + len("level: {$TELETRAAN_LOG_LEVEL:info}\n") + 60000 + 4 + 1 + len("read only in a read-only dir"))}
			if st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
			for _, c := range []struct {
				name string
				mode fs.FileMode
				body string
			}{
				{"teletraan", fs.ModeDir | 0o755, ""},
				{"teletraan/RESTARTING", 0o755, "#!/bin/sh\necho restart\n"},
				{"teletraan/config.yaml.tmpl", 0o640, "level: {$TELETRAAN_LOG_LEVEL:info}\n"},
				{"bin", fs.ModeDir | 0o755, ""},
				{"a/b/c", fs.ModeDir | 0o700, ""},
				{"a/b/c/deep.txt", 0o600, "deep"},
				{"a/empty", 0o644, ""},
				{"bin/app2", 0o755, strings.Repeat("binary", 10000)},
				{"ro", fs.ModeDir | 0o555, ""},
				{"ro/inside", 0o444, "read only in a read-only dir"},
				{"dotslash", 0o644, "x"},
			} {
				p := filepath.Join(dst, c.name)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("%s: %v", c.name, err)
					continue
				}
				if fi.Mode() != c.mode {
					t.Errorf("%s: mode %v, want %v", c.name, fi.Mode(), c.mode)
				}
				if c.name != "bin" && !fi.ModTime().Equal(mtime) { // bin has no entry of its own
					t.Errorf("%s: mtime %v, want %v", c.name, fi.ModTime(), mtime)
				}
				if c.mode.IsRegular() {
					if b, err := os.ReadFile(p); err != nil || string(b) != c.body {
						t.Errorf("%s: contents %.20q (%v), want %.20q", c.name, b, err, c.body)
					}
				}
			}
			for name, target := range map[string]string{"a/b/up": "../empty", "current-bin": "bin/app", "dangling": "not/there/yet"} {
				if got, err := os.Readlink(filepath.Join(dst, name)); err != nil || got != target {
					t.Errorf("symlink %s -> %q (%v), want %q", name, got, err, target)
				}
			}
			a, _ := os.Stat(filepath.Join(dst, "bin/app"))
			b, _ := os.Stat(filepath.Join(dst, "bin/app2"))
			if !os.SameFile(a, b) {
				t.Errorf("bin/app2 is not a hard link to bin/app")
			}
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("destination mode changed by a ./ entry: %v %v", fi.Mode(), err)
			}
		})
	}
}

// TestExtractModes: nothing extracted is writable by group or others (a
// 022 mask on every mode, as tar applies for a user other than root: pulld
// runs the scripts as root), and setuid, setgid and sticky bits are gone.
func TestExtractModes(t *testing.T) {
	dst, check := sandbox(t)
	defer check()
	data := archive(t, manifest.FormatZstd,
		file("suid", 0o4755, "x"),
		file("sgid", 0o2750, "x"),
		dir("sticky/", 0o1777),
		dir("open/", 0o777),
		file("open/world-writable", 0o666, "x"),
		file("group-writable", 0o775, "x"),
		dir("teletraan/", 0o777),
		file("teletraan/RESTARTING", 0o777, "#!/bin/sh\n"),
	)
	if _, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		"suid": 0o755, "sgid": 0o750, "sticky": fs.ModeDir | 0o755,
		"open": fs.ModeDir | 0o755, "open/world-writable": 0o644, "group-writable": 0o755,
		"teletraan": fs.ModeDir | 0o755, "teletraan/RESTARTING": 0o755,
	} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

// TestExtractDepth: a chain of MaxDepth directories extracts; one deeper is
// refused with ErrTooLarge before anything of it is written, so a crafted
// chain cannot make extraction cost the square of its depth.
func TestExtractDepth(t *testing.T) {
	ok := strings.Repeat("d/", MaxDepth-1) + "f"
	dst, check := sandbox(t)
	defer check()
	if _, err := Extract(bytes.NewReader(archive(t, manifest.FormatZstd, file(ok, 0o644, "x"))), manifest.FormatZstd, dst, Limits{}); err != nil {
		t.Fatalf("%d deep: %v", MaxDepth, err)
	}
	var chain []ent
	for i := 1; i <= 6000; i++ {
		chain = append(chain, dir(strings.Repeat("d/", i), 0o755))
	}
	dst2, check2 := sandbox(t)
	defer check2()
	_, err := Extract(bytes.NewReader(archive(t, manifest.FormatZstd, chain...)), manifest.FormatZstd, dst2, Limits{})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("%d directories deep, more than %d", MaxDepth+1, MaxDepth)) {
		t.Fatalf("6000-deep chain: %v, want ErrTooLarge at depth %d", err, MaxDepth+1)
	}
}

// TestExtractLyingSize: with MaxBytes set to the size a package's metadata
// records, an archive that unpacks to more stops as soon as the bytes
// written pass it, having written at most that many.
func TestExtractLyingSize(t *testing.T) {
	dst, check := sandbox(t)
	defer check()
	data := archive(t, manifest.FormatZstd, file("a", 0o644, strings.Repeat("a", 800)), file("b", 0o644, strings.Repeat("b", 800)), file("c", 0o644, "c"))
	st, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Extract = %v, want ErrTooLarge", err)
	}
	if st.Bytes > 1000 {
		t.Errorf("%d bytes written, more than the 1000 recorded", st.Bytes)
	}
	if _, err := os.Lstat(filepath.Join(dst, "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extraction went on past the recorded size: %v", err)
	}
}

func TestExtractRefusesHostile(t *testing.T) {
	// A sentinel outside the extraction dir that hostile entries aim at.
	outside := t.TempDir()
	sentinel := filepath.Join(outside, "sentinel")
	if err := os.WriteFile(sentinel, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := func(dst string) string { // a relative path from dst to the sentinel's dir
		r, err := filepath.Rel(dst, outside)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	tests := []struct {
		name string
		ents func(dst string) []ent
		want error
		msg  string // a substring of the error
	}{
		{"dotdot", func(string) []ent { return []ent{file("../evil", 0o644, "x")} }, ErrUnsafe, `"../evil": unsafe archive entry: path escapes the build`},
		{"absolute", func(string) []ent { return []ent{file("/etc/x", 0o644, "x")} }, ErrUnsafe, "absolute path"},
		{"absolute sentinel", func(string) []ent { return []ent{file(sentinel, 0o644, "x")} }, ErrUnsafe, "absolute path"},
		{"inner dotdot", func(string) []ent { return []ent{dir("a/", 0o755), file("a/../../x", 0o644, "x")} }, ErrUnsafe, "escapes"},
		{"deep dotdot to sentinel", func(dst string) []ent { return []ent{file("a/../"+rel(dst)+"/sentinel", 0o644, "x")} }, ErrUnsafe, "escapes"},
		{"empty name", func(string) []ent { return []ent{file("", 0o644, "x")} }, ErrUnsafe, "empty name"},
		{"symlink to root then through it", func(string) []ent {
			return []ent{symlink("link", "/"), file("link/etc/x", 0o644, "x")}
		}, ErrUnsafe, "symlink to absolute path"},
		{"symlink to outside dir then through it", func(dst string) []ent {
			return []ent{symlink("link", rel(dst)), file("link/sentinel", 0o644, "x")}
		}, ErrUnsafe, "outside the build"},
		{"symlink sub to parent then through it", func(string) []ent {
			return []ent{symlink("sub", ".."), file("sub/x", 0o644, "x")}
		}, ErrUnsafe, "outside the build"},
		{"symlink inside then through it", func(string) []ent {
			return []ent{dir("real/", 0o755), symlink("link", "real"), file("link/x", 0o644, "x")}
		}, ErrUnsafe, `parent "link" is a symlink`},
		{"symlink inside then dir through it", func(string) []ent {
			return []ent{dir("real/", 0o755), symlink("link", "real"), dir("link/d/", 0o755)}
		}, ErrUnsafe, `parent "link" is a symlink`},
		{"symlink then file over it", func(string) []ent {
			return []ent{file("real", 0o644, "x"), symlink("link", "real"), file("link", 0o644, "y")}
		}, ErrUnsafe, "replaces a symlink"},
		{"symlink chain escape", func(string) []ent {
			return []ent{symlink("d", "."), symlink("e", "d/..")}
		}, ErrUnsafe, "through other symlinks"},
		{"symlink chain escape, link first", func(string) []ent {
			return []ent{dir("x/", 0o755), symlink("e", "x/d/../.."), symlink("x/d", "..")}
		}, ErrUnsafe, "through other symlinks"},
		{"hard link to /etc/passwd", func(string) []ent { return []ent{hardlink("pw", "/etc/passwd")} }, ErrUnsafe, "hard link to absolute path"},
		{"hard link escaping", func(dst string) []ent { return []ent{hardlink("pw", rel(dst)+"/sentinel")} }, ErrUnsafe, "outside the build"},
		{"hard link to missing file", func(string) []ent { return []ent{hardlink("pw", "nothere")} }, ErrUnsafe, "not a regular file extracted earlier"},
		{"hard link to a directory", func(string) []ent { return []ent{dir("d/", 0o755), hardlink("pw", "d")} }, ErrUnsafe, "not a regular file extracted earlier"},
		{"hard link to a symlink", func(string) []ent {
			return []ent{symlink("s", "x"), hardlink("pw", "s")}
		}, ErrUnsafe, "not a regular file extracted earlier"},
		{"char device", func(string) []ent { return []ent{{name: "null", typ: tar.TypeChar, mode: 0o666}} }, ErrUnsafe, "device node"},
		{"block device", func(string) []ent { return []ent{{name: "sda", typ: tar.TypeBlock, mode: 0o660}} }, ErrUnsafe, "device node"},
		{"fifo", func(string) []ent { return []ent{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}} }, ErrUnsafe, "FIFO"},
		{"unknown type", func(string) []ent { return []ent{{name: "weird", typ: 'Z', mode: 0o644}} }, ErrUnsafe, "unsupported entry type"},
		{"file under a file", func(string) []ent { return []ent{file("f", 0o644, "x"), file("f/g", 0o644, "y")} }, ErrUnsafe, `parent "f" is a regular file`},
		{"duplicate file", func(string) []ent { return []ent{file("f", 0o644, "x"), file("f", 0o644, "y")} }, fs.ErrExist, `"f"`},
		{"dir over file", func(string) []ent { return []ent{file("f", 0o644, "x"), dir("f/", 0o755)} }, ErrUnsafe, "replaces a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst, check := sandbox(t)
			defer check()
			data := archive(t, manifest.FormatZstd, tc.ents(dst)...)
			_, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Extract error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "unpack: ") {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if b, err := os.ReadFile(sentinel); err != nil || string(b) != "untouched" {
				t.Errorf("sentinel changed: %q %v", b, err)
			}
			if names, _ := os.ReadDir(outside); len(names) != 1 {
				t.Errorf("directory outside holds %d entries, want 1", len(names))
			}
		})
	}
}

func TestExtractPreconditions(t *testing.T) {
	data := archive(t, manifest.FormatZstd, file("f", 0o644, "x"))
	t.Run("not empty", func(t *testing.T) {
		dst := t.TempDir()
		os.WriteFile(filepath.Join(dst, "old"), nil, 0o644)
		if _, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{}); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := Extract(bytes.NewReader(data), manifest.FormatZstd, filepath.Join(t.TempDir(), "no"), Limits{}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := Extract(bytes.NewReader(data), "tar.xz", t.TempDir(), Limits{}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("wrong format", func(t *testing.T) {
		if _, err := Extract(bytes.NewReader(data), manifest.FormatGzip, t.TempDir(), Limits{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestExtractCorrupt(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB, incompressible enough to span blocks
	for _, format := range formats {
		full := archive(t, format, file("a", 0o644, "x"), file("big", 0o644, big), file("z", 0o644, "z"))
		tests := map[string][]byte{
			"truncated":    full[:len(full)/2],
			"header only":  full[:10],
			"empty input":  nil,
			"no entries":   compress(t, format, tarball(t)),
			"garbled tail": append(append([]byte{}, full[:len(full)-40]...), bytes.Repeat([]byte{0xff}, 40)...),
		}
		for name, data := range tests {
			t.Run(string(format)+"/"+name, func(t *testing.T) {
				_, err := Extract(bytes.NewReader(data), format, t.TempDir(), Limits{})
				if err == nil {
					t.Fatal("no error")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("err = %v, want ErrCorrupt", err)
				}
				if !strings.HasPrefix(err.Error(), "unpack: "+string(format)+" archive is truncated or corrupt ") {
					t.Errorf("error %q does not say which archive format is corrupt", err)
				}
			})
		}
		t.Run(string(format)+"/truncated in an entry", func(t *testing.T) {
			raw := tarball(t, file("a", 0o644, "x"), file("big", 0o644, big))
			_, err := Extract(bytes.NewReader(compress(t, format, raw[:512*3+100<<10])), format, t.TempDir(), Limits{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `in entry "big": unexpected EOF`) {
				t.Fatalf("err = %v, want ErrCorrupt in entry big", err)
			}
		})
		t.Run(string(format)+"/trailing garbage", func(t *testing.T) {
			data := append(append([]byte{}, full...), []byte("garbage after the end")...)
			if _, err := Extract(bytes.NewReader(data), format, t.TempDir(), Limits{}); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(string(format)+"/garbage after tar end inside the stream", func(t *testing.T) {
			raw := append(tarball(t, file("a", 0o644, "x")), []byte("junk that is not tar")...)
			if _, err := Extract(bytes.NewReader(compress(t, format, raw)), format, t.TempDir(), Limits{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb returns a tar.zst holding files named name0, name1, … of size bytes
// of zeros each. The zeros are compressed once, a 64 MiB zstd frame that is
// repeated (a zstd stream may be a sequence of frames), so a 10 GB bomb is
// built in milliseconds and is a few hundred KB.
func bomb(t testing.TB, name string, files int, size int64) []byte {
	t.Helper()
	const chunk = 64 << 20
	if size%chunk != 0 {
		t.Fatalf("bomb size %d is not a multiple of %d", size, chunk)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	zeroFrame := enc.EncodeAll(make([]byte, chunk), nil)
	var b bytes.Buffer
	for i := range files {
		var h bytes.Buffer
		tw := tar.NewWriter(&h)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprint(name, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		tw.Flush()
		b.Write(enc.EncodeAll(h.Bytes(), nil))
		for range size / chunk {
			b.Write(zeroFrame)
		}
	}
	b.Write(enc.EncodeAll(make([]byte, 1024), nil)) // the tar end-of-archive marker
	return b.Bytes()
}

func TestExtractBomb(t *testing.T) {
	const tenGB = 160 << 26 // 10 GiB
	start := time.Now()
	data := bomb(t, "zeros", 1, tenGB)
	t.Logf("10 GB of zeros compress to %d bytes in %v", len(data), time.Since(start))
	if len(data) > 1<<20 {
		t.Fatalf("bomb is %d bytes, want a small one", len(data))
	}
	dst, check := sandbox(t)
	defer check()
	start = time.Now()
	_, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{MaxBytes: 1 << 20})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing the bomb took %v", d)
	}
	t.Log(err)
}

func TestExtractByteCapCountsCopiedBytes(t *testing.T) {
	// Several files under the cap each, over it together; the last one
	// crosses the cap mid-copy only if its header is not checked first,
	// so disable that by making each header honest and summing.
	const limit = 1 << 20
	ents := []ent{
		file("a", 0o644, strings.Repeat("a", 600<<10)),
		file("b", 0o644, strings.Repeat("b", 600<<10)),
	}
	dst, check := sandbox(t)
	defer check()
	st, err := Extract(bytes.NewReader(archive(t, manifest.FormatGzip, ents...)), manifest.FormatGzip, dst, Limits{MaxBytes: limit})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if st.Bytes > limit {
		t.Errorf("wrote %d bytes, more than the limit %d", st.Bytes, limit)
	}
	if !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("error %q does not name the entry", err)
	}

	// The copy loop itself stops at the cap whatever the header said.
	x := &extractor{lim: Limits{MaxBytes: 1000}}
	var sink bytes.Buffer
	n, err := x.copy(&sink, io.LimitReader(zeros{}, 5000), 1000)
	if !errors.Is(err, ErrTooLarge) || n > 1000 || sink.Len() > 1000 {
		t.Errorf("copy of 5000 bytes under a cap of 1000: n=%d, wrote %d, err=%v", n, sink.Len(), err)
	}
	sink.Reset()
	n, err = x.copy(&sink, io.LimitReader(zeros{}, 1000), 1000)
	if err != nil || n != 1000 {
		t.Errorf("copy of exactly the cap: n=%d err=%v", n, err)
	}
}

func TestExtractDefaultCapStops(t *testing.T) {
	// The default cap is far too large to test; a lowered cap on a larger
	// stream stands in for it: extraction stops at the cap, having written
	// no more than it.
	const limit = 200 << 20
	data := bomb(t, "f", 16, 64<<20) // 1 GiB in 16 files
	dst, check := sandbox(t)
	defer check()
	st, err := Extract(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{MaxBytes: limit})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), `"f3"`) {
		t.Errorf("error %q does not name f3, the first file over the cap", err)
	}
	var onDisk int64
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			onDisk += fi.Size()
		}
		return nil
	})
	if onDisk > limit || st.Bytes > limit || st.Bytes != onDisk {
		t.Errorf("wrote %d bytes (Stats says %d), cap %d", onDisk, st.Bytes, limit)
	}
	if d := (Limits{}).withDefaults(); d.MaxBytes != 64<<30 || d.MaxEntries != 1_000_000 {
		t.Errorf("defaults = %+v", d)
	}
}

func TestExtractEntryCap(t *testing.T) {
	var ents []ent
	for i := range 20 {
		ents = append(ents, file(strings.Repeat("f", i+1), 0o644, ""))
	}
	dst, check := sandbox(t)
	defer check()
	_, err := Extract(bytes.NewReader(archive(t, manifest.FormatZstd, ents...)), manifest.FormatZstd, dst, Limits{MaxEntries: 10})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if names, _ := os.ReadDir(dst); len(names) > 10 {
		t.Errorf("%d entries written, over the cap", len(names))
	}
}

func TestCheckEntry(t *testing.T) {
	ok := []*tar.Header{
		{Name: "a", Typeflag: tar.TypeReg},
		{Name: "./a/b/", Typeflag: tar.TypeDir},
		{Name: "a/../b", Typeflag: tar.TypeReg},
		{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: "../c"},
		{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: "."},
		{Name: "a", Typeflag: tar.TypeLink, Linkname: "b/c"},
		{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader},
		{Name: "..foo", Typeflag: tar.TypeReg},
	}
	for _, h := range ok {
		if err := CheckEntry(h); err != nil {
			t.Errorf("CheckEntry(%q %c -> %q) = %v", h.Name, h.Typeflag, h.Linkname, err)
		}
	}
	bad := []*tar.Header{
		{Name: "", Typeflag: tar.TypeReg},
		{Name: "..", Typeflag: tar.TypeDir},
		{Name: "a\x00b", Typeflag: tar.TypeReg},
		{Name: "/a", Typeflag: tar.TypeReg},
		{Name: "a/../..", Typeflag: tar.TypeDir},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: ""},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/"},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: ".."},
		{Name: "a/b", Typeflag: tar.TypeSymlink, Linkname: "../../c"},
		{Name: ".", Typeflag: tar.TypeSymlink, Linkname: "a"},
		{Name: "a", Typeflag: tar.TypeLink, Linkname: ""},
		{Name: "a", Typeflag: tar.TypeLink, Linkname: "../x"},
		{Name: "a", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		{Name: "a", Typeflag: tar.TypeLink, Linkname: "."},
		{Name: "a", Typeflag: tar.TypeChar},
		{Name: "a", Typeflag: tar.TypeBlock},
		{Name: "a", Typeflag: tar.TypeFifo},
		{Name: "a", Typeflag: tar.TypeCont},
		{Name: "a", Typeflag: 'x' + 1},
		{Name: "a", Typeflag: tar.TypeReg, Size: -1},
	}
	for _, h := range bad {
		err := CheckEntry(h)
		if !errors.Is(err, ErrUnsafe) {
			t.Errorf("CheckEntry(%q %c -> %q) = %v, want ErrUnsafe", h.Name, h.Typeflag, h.Linkname, err)
			continue
		}
		if !strings.Contains(err.Error(), "unpack: entry ") {
			t.Errorf("error %q does not name the entry", err)
		}
	}
}

// failAfter returns the first n bytes of data and then err.
type failAfter struct {
	data []byte
	n    int
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := copy(p, f.data[:min(f.n, len(f.data))])
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

type sourceError struct{}

func (sourceError) Error() string { return "connection reset by bucket" }

func TestExtractSourceError(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<14)
	for _, format := range formats {
		data := archive(t, format, file("a", 0o644, "x"), file("big", 0o644, big))
		for _, n := range []int{0, 5, len(data) / 2} {
			t.Run(fmt.Sprint(format, "/", n), func(t *testing.T) {
				_, err := Extract(&failAfter{data: data, n: n, err: sourceError{}}, format, t.TempDir(), Limits{})
				var se sourceError
				if !errors.As(err, &se) {
					t.Fatalf("err = %v, want the source's error", err)
				}
				if errors.Is(err, ErrCorrupt) {
					t.Errorf("a failing source reported as a corrupt archive: %v", err)
				}
				if !strings.HasPrefix(err.Error(), "unpack: reading "+string(format)+" archive") {
					t.Errorf("err = %q", err)
				}
			})
		}
	}
}

// TestExtractDeferred checks that ExtractDeferred leaves every directory it
// creates owner-writable and searchable (0700) whatever the archive says,
// so its owner can write into one the archive makes read-only, and that
// DirModes.Apply then gives the directories the archive's modes and times,
// deepest first, those written into included, and nothing else. It runs
// as a user whom permission bits bind (nobody when the tests run as root),
// so that the writes and an Apply that did not go deepest first fail; the
// checks of the modes and times before and after Apply hold for any user.
func TestExtractDeferred(t *testing.T) {
	if unprivileged.Run(t) {
		return
	}
	ents := []ent{
		dir("teletraan/", 0o555),
		file("teletraan/app.conf.tmpl", 0o640, "level={$TELETRAAN_LOG_LEVEL:info}\n"),
		dir("teletraan/conf/", 0o500),
		file("teletraan/conf/db.yaml.tmpl", 0o600, "url: x\n"),
		dir("locked/", 0o600), // not searchable: its subdirectory gets its mode first
		dir("locked/inner/", 0o750),
		file("locked/inner/f", 0o644, "f"),
		file("bin/app", 0o755, "app"), // implicit parent
	}
	archiveModes := []struct {
		name string
		mode fs.FileMode
	}{
		{"teletraan", 0o555},
		{"teletraan/conf", 0o500},
		{"locked", 0o600},
		{"locked/inner", 0o750}, // checked after locked, which the check opens
		{"bin", 0o755},
	}
	for _, format := range formats {
		t.Run(string(format), func(t *testing.T) {
			dst, check := sandbox(t)
			defer check()
			unprivileged.RemovableTree(t, dst)
			st, modes, err := ExtractDeferred(bytes.NewReader(archive(t, format, ents...)), format, dst, Limits{})
			if err != nil {
				t.Fatalf("ExtractDeferred: %v", err)
			}
			if want := (Stats{Files: 4, Dirs: 5, Bytes: int64(len(ents[1].body) + len(ents[3].body) + 1 + 3)}); st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
			for _, d := range archiveModes {
				if got, want := lmode(filepath.Join(dst, d.name)), (fs.ModeDir | 0o700).String(); got != want {
					t.Errorf("%s before Apply: %s, want %s", d.name, got, want)
				}
			}
			if got, want := lmode(filepath.Join(dst, "teletraan/app.conf.tmpl")), fs.FileMode(0o640).String(); got != want {
				t.Errorf("a file before Apply: %s, want its own mode %s", got, want)
			}

			// What pulld's rendering does: new files and a new directory in
			// directories the archive makes read-only.
			for _, p := range []string{"teletraan/app.conf", "teletraan/conf/db.yaml"} {
				if err := os.WriteFile(filepath.Join(dst, p), []byte("rendered"), 0o640); err != nil {
					t.Fatalf("writing %s before Apply: %v", p, err)
				}
			}
			if err := os.Mkdir(filepath.Join(dst, "teletraan/added"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dst, "teletraan/added"), 0o751); err != nil {
				t.Fatal(err)
			}

			if err := modes.Apply(); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for _, d := range archiveModes {
				if d.name == "locked/inner" {
					// Only root may look inside locked/ now.
					if err := os.Chmod(filepath.Join(dst, "locked"), 0o700); err != nil {
						t.Fatal(err)
					}
				}
				fi, err := os.Lstat(filepath.Join(dst, d.name))
				if err != nil {
					t.Errorf("%s: %v", d.name, err)
					continue
				}
				if fi.Mode() != fs.ModeDir|d.mode {
					t.Errorf("%s after Apply: mode %v, want %v", d.name, fi.Mode(), fs.ModeDir|d.mode)
				}
				if d.name == "bin" { // no entry of its own: no time to set
					continue
				}
				if !fi.ModTime().Equal(mtime) {
					t.Errorf("%s after Apply: mtime %v, want the archive's %v", d.name, fi.ModTime(), mtime)
				}
			}
			if got, want := lmode(filepath.Join(dst, "teletraan/added")), (fs.ModeDir | 0o751).String(); got != want {
				t.Errorf("a directory the caller made: %s, want it left at %s", got, want)
			}
		})
	}

	t.Run("refused archive", func(t *testing.T) {
		dst := t.TempDir()
		data := archive(t, manifest.FormatZstd, dir("ro/", 0o555), file("ro/x", 0o444, "x"), file("../evil", 0o644, "x"))
		_, modes, err := ExtractDeferred(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{})
		if !errors.Is(err, ErrUnsafe) || modes != nil {
			t.Fatalf("ExtractDeferred = %v, %v; want ErrUnsafe and no DirModes", modes, err)
		}
		if got, want := lmode(filepath.Join(dst, "ro")), (fs.ModeDir | 0o700).String(); got != want {
			t.Errorf("ro after a refusal: %s, want %s so that the caller can remove it", got, want)
		}
	})

	t.Run("directory gone before Apply", func(t *testing.T) {
		dst := t.TempDir()
		data := archive(t, manifest.FormatZstd, dir("a/", 0o755), dir("a/b/", 0o555))
		_, modes, err := ExtractDeferred(bytes.NewReader(data), manifest.FormatZstd, dst, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dst, "a/b")); err != nil {
			t.Fatal(err)
		}
		if err := modes.Apply(); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"a/b"`) {
			t.Errorf("Apply = %v, want an error naming a/b", err)
		}
	})
}

// lmode returns the mode of p, not following a symlink, as text, or the
// error of os.Lstat.
func lmode(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return err.Error()
	}
	return fi.Mode().String()
}
