package pkgformat

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchArchive returns a tar stream of about 64 MiB: a mix of a few large
// files, many small ones, directories and symlinks; its contents are half
// random and half repetitive, like a build's binaries and text.
func benchArchive(b *testing.B) (raw []byte, files int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		tw.Write(body)
	}
	body := func(n int) []byte {
		p := make([]byte, n)
		for i := range p[:n/2] {
			p[i] = byte(rng.Uint32())
		}
		for i := n / 2; i < n; i++ {
			p[i] = "pushpull "[i%9]
		}
		return p
	}
	for i := range 6 {
		add(&tar.Header{Name: fmt.Sprintf("bin/large%d", i), Typeflag: tar.TypeReg, Mode: 0o755}, body(8<<20))
		files++
	}
	for d := range 64 {
		add(&tar.Header{Name: fmt.Sprintf("share/d%d/", d), Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		for f := range 64 {
			add(&tar.Header{Name: fmt.Sprintf("share/d%d/f%d.txt", d, f), Typeflag: tar.TypeReg, Mode: 0o644}, body(4<<10))
			files++
		}
		add(&tar.Header{Name: fmt.Sprintf("share/d%d/latest", d), Typeflag: tar.TypeSymlink, Linkname: "f0.txt"}, nil)
	}
	tw.Close()
	return buf.Bytes(), files
}

func BenchmarkExtract(b *testing.B) {
	raw, _ := benchArchive(b)
	for _, format := range formats {
		b.Run(string(format), func(b *testing.B) {
			data := compress(b, format, raw)
			parent := b.TempDir()
			b.SetBytes(int64(len(raw)))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				dst := filepath.Join(parent, fmt.Sprint(i))
				if err := os.Mkdir(dst, 0o755); err != nil {
					b.Fatal(err)
				}
				if _, err := Extract(bytes.NewReader(data), format, dst, Limits{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		})
	}
}
