package pkginstall_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkginstall"
)

// benchInstallEnv names the environment variable that turns the test binary
// into a one-shot installer, so a benchmark can read its peak RSS.
const benchInstallEnv = "PKGINSTALL_BENCH_INSTALL"

type benchJob struct {
	Root    string `json:"root"`
	Bucket  string `json:"bucket"`
	Package string `json:"package"`
}

// benchInstall installs one package as the job says and exits.
func benchInstall(job string) int {
	var j benchJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	store, err := blobstore.Open(ctx, j.Bucket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	eng, err := pkginstall.Open(j.Root, pkginstall.Config{Store: store, Server: "bench"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, _ := manifest.ParsePackageName(j.Package)
	if r := eng.Apply(ctx, manifest.Entry{Package: p}); r.Err != nil {
		fmt.Fprintln(os.Stderr, r.Err)
		return 1
	}
	return 0
}

// writeBigPackage streams a mixed package into w: small files of 20 KiB
// totalling about small bytes, then one file making up the rest of size
// bytes, half-compressible like a binary.
func writeBigPackage(w io.Writer, size, small int64) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	fill := func(p []byte) {
		rng.Read(p)
		for i := range p {
			p[i] &= 0x0f
		}
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "teletraan/", Mode: 0o755})
	const fileSize = 20 << 10
	n := small / fileSize
	for i := range n {
		if i%1000 == 0 {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("lib/d%03d/", i/1000), Mode: 0o755}); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("lib/d%03d/f%06d", i/1000, i), Mode: 0o644, Size: fileSize}); err != nil {
			return err
		}
		fill(buf[:fileSize])
		tw.Write(buf[:fileSize])
	}
	rest := size - n*fileSize
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/big", Mode: 0o755, Size: rest}); err != nil {
		return err
	}
	for rest > 0 {
		c := min(rest, int64(len(buf)))
		fill(buf[:c])
		if _, err := tw.Write(buf[:c]); err != nil {
			return err
		}
		rest -= c
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// BenchmarkInstall installs a package of PUSHPULL_BENCH_BYTES (default
// 256 MiB) unpacked, 60% in one file and 40% in files of 20 KiB (for 1 GiB:
// one 614 MiB file and ~21k small ones), from a file:// bucket into a fresh
// root, and reports the time against `zstd -dc | tar -x` plus `sha256sum`
// of the same object (ratio) and the peak RSS of an installing process
// (peak-RSS-MiB).
func BenchmarkInstall(b *testing.B) {
	size := int64(256 << 20)
	if v, err := strconv.ParseInt(os.Getenv("PUSHPULL_BENCH_BYTES"), 10, 64); err == nil && v > 0 {
		size = v
	}
	small := size * 2 / 5
	bucketDir := b.TempDir()
	ctx := context.Background()
	store, err := blobstore.Open(ctx, "file://"+bucketDir)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	name := deploytest.Name(b, "big", 1, manifest.FormatZstd)
	pw, err := store.NewPackageWriter(ctx, name, deploytest.Meta(name))
	if err != nil {
		b.Fatal(err)
	}
	if err := writeBigPackage(pw, size, small); err != nil {
		pw.Abort()
		b.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
	object := filepath.Join(bucketDir, blobstore.PackageKey(name))
	fi, err := os.Stat(object)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)

	b.ResetTimer()
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		root := filepath.Join(b.TempDir(), fmt.Sprint(i))
		eng, err := pkginstall.Open(root, pkginstall.Config{Store: store, Server: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r := eng.Apply(ctx, manifest.Entry{Package: name})
		total += time.Since(start)
		b.StopTimer()
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		eng.Close()
		os.RemoveAll(root)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(fi.Size())/(1<<20), "object-MiB")

	if baseline, err := baselineInstall(b, object); err != nil {
		b.Logf("no baseline: %v", err)
	} else {
		b.ReportMetric(float64(total)/float64(b.N)/float64(baseline), "ratio")
	}
	if rss, err := installRSS(b, "file://"+bucketDir, name); err != nil {
		b.Logf("no RSS: %v", err)
	} else {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// baselineInstall times `zstd -dc | tar -x` and `sha256sum` of object, the
// best of three.
func baselineInstall(b *testing.B, object string) (time.Duration, error) {
	for _, tool := range []string{"zstd", "tar", "sha256sum", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, err
		}
	}
	best := time.Duration(1 << 62)
	for range 3 {
		dir := b.TempDir()
		start := time.Now()
		cmd := exec.Command("sh", "-c", `zstd -dc "$1" | tar -x -C "$2" && sha256sum "$1" >/dev/null`, "sh", object, dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		best = min(best, time.Since(start))
		os.RemoveAll(dir)
	}
	return best, nil
}

// installRSS runs one install in a child process and returns its peak RSS.
func installRSS(b *testing.B, bucket string, name manifest.PackageName) (int64, error) {
	job, _ := json.Marshal(benchJob{Root: b.TempDir(), Bucket: bucket, Package: name.String()})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchInstallEnv+"="+string(job))
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, fmt.Errorf("no rusage")
	}
	return ru.Maxrss << 10, nil // Linux reports KiB
}

// BenchmarkRollback measures a rollback to a kept build: no download, no
// scripts (the packages have none), templates rendered, current switched,
// state written.
func BenchmarkRollback(b *testing.B) {
	ctx := context.Background()
	store, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	files := func(v string) map[string]string {
		m := map[string]string{"version.txt": v, "teletraan/app.conf.tmpl": "level={$TELETRAAN_LOG_LEVEL:info}\n"}
		for i := range 200 {
			m[fmt.Sprintf("lib/f%03d", i)] = v
		}
		return m
	}
	v1 := deploytest.Build(b, store, "hello", 1, files("v1"))
	v2 := deploytest.Build(b, store, "hello", 2, files("v2"))
	eng, err := pkginstall.Open(b.TempDir(), pkginstall.Config{Store: store, Server: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	for _, v := range []manifest.PackageName{v1, v2} {
		if r := eng.Apply(ctx, manifest.Entry{Package: v}); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		r := eng.Apply(ctx, manifest.Entry{Package: v1})
		total += time.Since(start)
		if r.Err != nil || r.Action != manifest.ActionRollback || r.Downloaded != 0 {
			b.Fatalf("%+v", r)
		}
		b.StopTimer()
		if r := eng.Apply(ctx, manifest.Entry{Package: v2}); r.Err != nil {
			b.Fatal(r.Err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms")
}
