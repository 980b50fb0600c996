package release

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// benchTree writes a tree of about size bytes: files of 1 MiB (and a few
// small ones), half random and half repetitive, so the compressor has real
// work to do.
func benchTree(b *testing.B, size int64) string {
	dir := b.TempDir()
	r := mrand.NewChaCha8([32]byte{2})
	chunk := make([]byte, 1<<20)
	for i := int64(0); i*int64(len(chunk)) < size; i++ {
		n := min(int64(len(chunk)), size-i*int64(len(chunk)))
		_, _ = r.Read(chunk[:n/2])
		for j := n / 2; j < n; j++ {
			chunk[j] = byte("pushpull release benchmark\n"[j%27])
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%16), fmt.Sprintf("f%05d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, chunk[:n], 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "teletraan"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "teletraan", "RESTARTING"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkRelease measures packaging and upload of a tree to a file://
// bucket; MB/s is of the tree's bytes. The tree's size is
// $PUSHPULL_BENCH_BYTES (default 32 MiB; make bench uses 1 GiB). ratio
// divides the time of one release by that of `tar -cf - DIR | zstd -T0 >
// FILE` of the same tree, measured in the same run (the best of two).
func BenchmarkRelease(b *testing.B) {
	size := int64(32 << 20)
	if s := os.Getenv("PUSHPULL_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("PUSHPULL_BENCH_BYTES=%q: want a positive number of bytes", s)
		}
		size = n
	}
	dir := benchTree(b, size)
	// Both sides are timed with the tree on disk and in the page cache: a
	// first release racing the writeback of the tree it was just given
	// would measure the disk, not the release.
	syscall.Sync()
	bucket := "file://" + b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		cfg := testConfig(bucket, "bench", dir)
		cfg.Now = func() time.Time { return fixedNow.Add(time.Duration(n) * time.Second) }
		n++
		if _, err := Run(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
	}
	perOp := b.Elapsed() / time.Duration(n)
	b.ReportMetric(float64(perOp)/float64(baselineRelease(b, dir)), "ratio")
}

// baselineRelease returns the best of two runs of `tar -cf - DIR | zstd -T0`
// into a file, the command-line equivalent of packaging without upload.
func baselineRelease(b *testing.B, dir string) time.Duration {
	out := filepath.Join(b.TempDir(), "baseline.tar.zst")
	best := time.Duration(1 << 62)
	for range 2 {
		start := time.Now()
		cmd := exec.Command("sh", "-c", `tar -cf - -C "$1" . | zstd -q -T0 -f -o "$2"`, "sh", dir, out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("baseline tar | zstd: %v: %s", err, msg)
		}
		best = min(best, time.Since(start))
	}
	return best
}
