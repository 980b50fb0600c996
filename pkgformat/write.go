package pkgformat

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/pushpull/pushpull/manifest"
)

// copyBufferSize is the size of the buffer files are read with.
const copyBufferSize = 1 << 20

// compressor returns a writer compressing into w in format, using every
// CPU.
func compressor(w io.Writer, format manifest.Format) (io.WriteCloser, error) {
	switch format {
	case manifest.FormatZstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	case manifest.FormatGzip:
		zw, err := pgzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		return zw, nil
	}
	return nil, fmt.Errorf("unknown archive format %q", format)
}

// WriteArchive writes t as a package to w, a tar archive compressed in
// format: entries in t's order, modes kept, ownership normalised to 0,
// every mtime set to mtime. read, when not nil, is called with the number
// of file bytes read after each read. It stops at the first error, or when
// ctx is done, and fails when a file changed size since WalkTree.
func (t *Tree) WriteArchive(ctx context.Context, w io.Writer, format manifest.Format, mtime time.Time, read func(int)) error {
	if read == nil {
		read = func(int) {}
	}
	zw, err := compressor(w, format)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	buf := make([]byte, copyBufferSize)
	for _, e := range t.entries {
		if err := ctx.Err(); err != nil {
			_ = zw.Close()
			return err
		}
		if err := writeEntry(tw, t.root, e, mtime, buf, read); err != nil {
			_ = zw.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = zw.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	return nil
}

// writeEntry writes one entry's header and, for a file, its content.
func writeEntry(tw *tar.Writer, root string, e entry, mtime time.Time, buf []byte, read func(int)) error {
	h := &tar.Header{
		Name:    e.rel,
		Mode:    tarMode(e.info.Mode()),
		ModTime: mtime,
	}
	var f *os.File
	switch m := e.info.Mode(); {
	case m.IsDir():
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case m&fs.ModeSymlink != 0:
		h.Typeflag = tar.TypeSymlink
		h.Linkname = e.link
	default:
		h.Typeflag = tar.TypeReg
		var err error
		f, err = os.Open(filepath.Join(root, filepath.FromSlash(e.rel)))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() || st.Size() != e.info.Size() {
			return fmt.Errorf("%s changed while being packaged", e.rel)
		}
		h.Size = st.Size()
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("archive %s: %w", e.rel, err)
	}
	if f == nil {
		return nil
	}
	var n int64
	for n < h.Size {
		k, err := f.Read(buf[:min(int64(len(buf)), h.Size-n)])
		if k > 0 {
			if _, werr := tw.Write(buf[:k]); werr != nil {
				return fmt.Errorf("archive %s: %w", e.rel, werr)
			}
			n += int64(k)
			read(k)
		}
		if err == io.EOF {
			return fmt.Errorf("%s shrank while being packaged", e.rel)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", e.rel, err)
		}
	}
	return nil
}

// tarMode returns the permission bits of m, with setuid, setgid and sticky,
// as tar stores them.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
