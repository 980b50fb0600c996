package pkgformat

// Reading packages: Extract unpacks an archive safely.
//
// A package is a tar stream compressed with zstd or gzip (see
// manifest.Format). Extract streams it into an empty directory in constant
// memory (apart from a small record per directory, symlink and regular file,
// which the safety checks need) and refuses anything that could write, link
// or point outside that directory: absolute or escaping names, symlinks whose
// target resolves outside it (also through other symlinks of the archive),
// hard links to anything but a regular file the archive already extracted,
// paths that pass through a symlink the archive created, device nodes, FIFOs
// and unknown entry types. It also bounds the bytes and entries one archive
// may unpack to, so a compression bomb fails fast instead of filling the disk.
//
// Nothing it installs is writable by group or others: every mode from the
// archive loses those bits (a 022 mask, as tar applies for a user other
// than root), and setuid, setgid and sticky bits are dropped, because pulld
// runs the build's scripts as root and any local user could otherwise
// append to one. Paths deeper than MaxDepth directories are refused, which
// keeps the cost of extraction linear in the size of the archive.
//
// Every refusal wraps ErrUnsafe, every size overrun wraps ErrTooLarge, and a
// truncated or corrupt stream wraps ErrCorrupt, so callers can tell them
// apart with errors.Is.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/pushpull/pushpull/manifest"
)

// Errors wrapped by Extract and CheckEntry.
var (
	// ErrUnsafe is wrapped by every refusal of an entry that could escape
	// the destination or that has a type pushpull does not install.
	ErrUnsafe = errors.New("unsafe archive entry")
	// ErrTooLarge is wrapped when an archive exceeds Limits.
	ErrTooLarge = errors.New("archive exceeds the unpack limits")
	// ErrCorrupt is wrapped when the compressed or tar stream is truncated or
	// malformed.
	ErrCorrupt = errors.New("archive is truncated or corrupt")
)

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxBytes   int64 = 64 << 30  // 64 GiB of file contents
	DefaultMaxEntries       = 1_000_000 // tar headers, of any type
)

// MaxDepth is how many directories deep an entry may be. The checks of
// each entry walk its parents, so without a bound a crafted chain of
// directories costs the square of its depth.
const MaxDepth = 256

// notWritable are the permission bits no installed file or directory
// keeps: write for group and others.
const notWritable fs.FileMode = 0o022

// installMode is the mode an archive entry's mode becomes on disk: its
// permission bits, without group and other write.
func installMode(h *tar.Header) fs.FileMode { return h.FileInfo().Mode().Perm() &^ notWritable }

// MaxWindow is the largest zstd window Extract accepts (128 MiB, what
// `zstd --long` uses); a stream that asks for more is refused as corrupt
// rather than allowed to allocate without bound.
const MaxWindow = 128 << 20

// Limits bound what one archive may unpack to. Zero fields mean the defaults:
// DefaultMaxBytes (64 GiB) of file contents and DefaultMaxEntries (1,000,000)
// entries. Negative fields are treated as zero.
type Limits struct {
	// MaxBytes caps the bytes of regular-file contents written, counted as
	// they are copied (a header that lies about its size is still caught).
	MaxBytes int64
	// MaxEntries caps the number of tar entries, of any type.
	MaxEntries int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// Stats describes what Extract wrote.
type Stats struct {
	Files, Dirs, Symlinks int   // entries created; hard links count as Files
	Bytes                 int64 // bytes of regular-file contents written
}

// copyBufSize is the size of the pooled buffers Extract copies file contents
// through.
const copyBufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Extract decompresses r according to format (manifest.FormatZstd or
// manifest.FormatGzip) and extracts the tar stream into dir, which must
// exist and be empty. It never writes outside dir and never follows a
// symlink it created. It does not close r.
//
// Regular files get the entry's permission bits with setuid, setgid and
// sticky removed and without group and other write; directories get theirs
// (the same way), deepest first, once the whole
// archive is written; modification times are applied; ownership, xattrs and
// ACLs are not. Data after the tar end-of-archive marker is not read. The
// mode of dir itself is left as it is.
//
// On error, dir may hold part of the archive, with every directory still
// mode 0700; the caller is expected to remove it (pulld unpacks into a
// temporary directory for that reason). The error names the entry
// concerned and wraps ErrUnsafe, ErrTooLarge or ErrCorrupt where those
// apply.
//
// A caller that writes into the tree after extracting it (pulld renders
// templates) uses ExtractDeferred instead, so that a directory the archive
// makes read-only does not stop it.
func Extract(r io.Reader, format manifest.Format, dir string, lim Limits) (Stats, error) {
	st, modes, err := ExtractDeferred(r, format, dir, lim)
	if err != nil {
		return st, err
	}
	return st, modes.Apply()
}

// ExtractDeferred is Extract without its last step: it leaves every
// directory it creates with mode 0700 (owner read, write and search, as far
// as the process umask allows) and the modification time of its creation,
// and returns the permission bits and times the archive gives those
// directories, for the caller to set with DirModes.Apply once it has
// finished writing into the tree. Regular files, symlinks and hard links
// are complete when it returns, as with Extract.
//
// This way the owner of the tree can add or replace files in any directory
// the archive created, even one the archive makes read-only (permission
// bits bind every user but root), and the directories still end up with
// the archive's modes and times, those of the directories written into
// included.
//
// On error it returns a nil *DirModes, and dir may hold part of the archive
// with every directory mode 0700, so os.RemoveAll can remove it. Errors are
// those of Extract.
func ExtractDeferred(r io.Reader, format manifest.Format, dir string, lim Limits) (Stats, *DirModes, error) {
	lim = lim.withDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, nil, fmt.Errorf("unpack: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root, dir); err != nil {
		return Stats{}, nil, err
	}

	if format == manifest.FormatDeb {
		return keepDeb(root, r, lim)
	}
	x := newExtractor(root, format, lim)
	x.src = &srcReader{r: r}
	var dec io.Reader
	switch format {
	case manifest.FormatZstd:
		zr, err := zstd.NewReader(x.src,
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(MaxWindow),
		)
		if err != nil {
			return Stats{}, nil, x.corrupt("at its start", err)
		}
		defer zr.Close()
		dec = zr
	case manifest.FormatGzip:
		zr, err := gzip.NewReader(x.src)
		if err != nil {
			return Stats{}, nil, x.corrupt("at its start", err)
		}
		defer zr.Close()
		dec = zr
	default:
		return Stats{}, nil, fmt.Errorf("unpack: unknown archive format %q", format)
	}
	if err := x.run(tar.NewReader(dec)); err != nil {
		return x.stats, nil, err
	}
	return x.stats, x.dirModes(dir), nil
}

// debMagic starts every Debian package: an ar archive whose first member
// is debian-binary.
const debMagic = "!<arch>\ndebian-binary"

// DebMagicLen is how many first bytes of a file IsDebHead needs.
const DebMagicLen = len(debMagic)

// IsDebHead reports whether head, the first DebMagicLen bytes of a file,
// start a Debian package (an ar archive whose first member is
// debian-binary).
func IsDebHead(head []byte) bool { return string(head) == debMagic }

// keepDeb is ExtractDeferred for a Debian package, which pulld keeps whole
// for dpkg: it copies r to DebFile in root, at most lim.MaxBytes, after
// checking that it starts as a .deb does. dpkg checks the rest when it
// installs it.
func keepDeb(root *os.Root, r io.Reader, lim Limits) (Stats, *DirModes, error) {
	head := make([]byte, len(debMagic))
	if _, err := io.ReadFull(r, head); err != nil || !IsDebHead(head) {
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Stats{}, nil, fmt.Errorf("unpack: deb %w: it does not start as a Debian package (an ar archive whose first member is debian-binary)", ErrCorrupt)
		}
		return Stats{}, nil, fmt.Errorf("unpack: reading deb: %w", err)
	}
	f, err := root.OpenFile(DebFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Stats{}, nil, fmt.Errorf("unpack: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(io.MultiReader(bytes.NewReader(head), r), lim.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return Stats{}, nil, fmt.Errorf("unpack: reading deb: %w", err)
	case n > lim.MaxBytes:
		return Stats{}, nil, fmt.Errorf("unpack: deb %w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	return Stats{Files: 1, Bytes: n}, &DirModes{}, nil
}

func checkEmpty(root *os.Root, dir string) error {
	f, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("unpack: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("unpack: destination %s is not empty", dir)
	}
	return nil
}

type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

type extractor struct {
	root   *os.Root
	src    *srcReader // nil when reading an uncompressed stream in tests
	lim    Limits
	format manifest.Format
	stats  Stats

	entries  int
	symlinks map[string]string  // cleaned name -> link target, as created
	files    map[string]bool    // cleaned names of regular files created
	dirs     map[string]dirMeta // cleaned names of directories created
}

func newExtractor(root *os.Root, format manifest.Format, lim Limits) *extractor {
	return &extractor{
		root:     root,
		lim:      lim.withDefaults(),
		format:   format,
		symlinks: map[string]string{},
		files:    map[string]bool{},
		dirs:     map[string]dirMeta{},
	}
}

// corrupt returns the error for a failure to read the archive; where says
// where in the archive the stream broke. An error that came from the
// caller's reader is wrapped as it is (so errors.Is and errors.As see the
// caller's own errors); anything else is the archive's fault and wraps
// ErrCorrupt.
func (x *extractor) corrupt(where string, err error) error {
	if x.src != nil && x.src.err != nil {
		return fmt.Errorf("unpack: reading %s archive %s: %w", x.format, where, x.src.err)
	}
	return fmt.Errorf("unpack: %s %w %s: %w", x.format, ErrCorrupt, where, err)
}

// srcReader remembers the first error other than io.EOF that the caller's
// reader returned, to tell a failing source from a corrupt archive.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

func (x *extractor) run(tr *tar.Reader) error {
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && h != nil) {
			where := "at its start"
			if last != "" {
				where = fmt.Sprintf("after entry %q", last)
			}
			return x.corrupt(where, err)
		}
		x.entries++
		if x.entries > x.lim.MaxEntries {
			return fmt.Errorf("unpack: entry %q: %w: more than %d entries", h.Name, ErrTooLarge, x.lim.MaxEntries)
		}
		if err := CheckEntry(h); err != nil {
			return err
		}
		last = h.Name
		if err := x.entry(tr, h); err != nil {
			return err
		}
	}
	if x.entries == 0 {
		return x.corrupt("at its start", errors.New("no entries"))
	}
	return x.checkSymlinkChains()
}

func (x *extractor) entry(tr *tar.Reader, h *tar.Header) error {
	name := cleanName(h.Name)
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if name == "." {
		// "./" names the destination itself: nothing to create, and its
		// mode stays the caller's.
		if h.Typeflag == tar.TypeDir {
			return nil
		}
		return unsafe(h.Name, "names the destination directory itself")
	}
	if err := x.checkParents(h.Name, name); err != nil {
		return err
	}
	if _, ok := x.symlinks[name]; ok {
		return unsafe(h.Name, "replaces a symlink created earlier in the archive")
	}
	if dir := path.Dir(name); dir != "." {
		if _, ok := x.dirs[dir]; !ok {
			if err := x.mkdirAll(h.Name, dir); err != nil {
				return err
			}
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(h, name)
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(tr, h, name)
	case tar.TypeSymlink:
		if err := x.root.Symlink(h.Linkname, name); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
		}
		x.symlinks[name] = h.Linkname
		x.stats.Symlinks++
		return nil
	case tar.TypeLink:
		target := cleanName(h.Linkname)
		if !x.files[target] {
			return unsafe(h.Name, fmt.Sprintf("hard link target %q is not a regular file extracted earlier", h.Linkname))
		}
		if err := x.root.Link(target, name); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
		}
		x.files[name] = true
		x.stats.Files++
		return nil
	}
	return unsafe(h.Name, fmt.Sprintf("unsupported entry type %q", h.Typeflag))
}

// checkParents refuses a name any of whose parent directories is a symlink
// created by this archive: writing through it would follow the link.
func (x *extractor) checkParents(raw, name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		if _, ok := x.symlinks[name[:i]]; ok {
			return unsafe(raw, fmt.Sprintf("parent %q is a symlink", name[:i]))
		}
		if x.files[name[:i]] {
			return unsafe(raw, fmt.Sprintf("parent %q is a regular file", name[:i]))
		}
	}
	return nil
}

// mkdirAll creates dir and its missing parents with mode 0700 and records
// mode 0755 for them (a later entry of the archive may set another).
func (x *extractor) mkdirAll(raw, dir string) error {
	var missing []string
	for d := dir; d != "."; d = path.Dir(d) {
		if _, ok := x.dirs[d]; ok {
			break
		}
		missing = append(missing, d)
	}
	for _, d := range slices.Backward(missing) {
		if err := x.root.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", raw, err)
		}
		x.dirs[d] = dirMeta{mode: 0o755}
		x.stats.Dirs++
	}
	return nil
}

func (x *extractor) dir(h *tar.Header, name string) error {
	meta := dirMeta{mode: installMode(h), mtime: h.ModTime}
	if _, ok := x.dirs[name]; ok {
		x.dirs[name] = meta // a repeated directory entry: the last one wins
		return nil
	}
	if x.files[name] {
		return unsafe(h.Name, "directory replaces a file extracted earlier")
	}
	if err := x.root.Mkdir(name, 0o700); err != nil {
		return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
	}
	x.dirs[name] = meta
	x.stats.Dirs++
	return nil
}

func (x *extractor) file(tr *tar.Reader, h *tar.Header, name string) error {
	remaining := x.lim.MaxBytes - x.stats.Bytes
	if h.Size > remaining {
		return fmt.Errorf("unpack: entry %q: %w: %d bytes would pass the limit of %d", h.Name, ErrTooLarge, h.Size, x.lim.MaxBytes)
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
	}
	x.files[name] = true
	x.stats.Files++
	n, err := x.copy(f, tr, remaining)
	x.stats.Bytes += n
	if err != nil {
		f.Close()
		if re, ok := err.(readError); ok {
			return x.corrupt(fmt.Sprintf("in entry %q", h.Name), re.err)
		}
		if err == ErrTooLarge {
			return fmt.Errorf("unpack: entry %q: %w: more than %d bytes", h.Name, ErrTooLarge, x.lim.MaxBytes)
		}
		return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
	}
	if err := f.Chmod(installMode(h)); err != nil {
		f.Close()
		return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
	}
	if !h.ModTime.IsZero() {
		if err := x.root.Chtimes(name, h.ModTime, h.ModTime); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", h.Name, err)
		}
	}
	return nil
}

// readError marks an error reading the archive, as opposed to writing the
// destination.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// copy copies r to w through a pooled buffer and fails with ErrTooLarge as
// soon as more than max bytes have come out of r, having written at most max.
func (x *extractor) copy(w io.Writer, r io.Reader, max int64) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if int64(m) > max-n {
				return n, ErrTooLarge
			}
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, readError{rerr}
		}
	}
}

// checkSymlinkChains resolves every symlink the archive created, following
// the archive's other symlinks the way the kernel would, and refuses one
// that ends up outside the destination (e.g. `d -> .` and `e -> d/..`,
// each harmless on its own).
func (x *extractor) checkSymlinkChains() error {
	for name, target := range x.symlinks {
		if !x.resolvesInside(name, target) {
			return unsafe(name, fmt.Sprintf("symlink target %q resolves outside the destination through other symlinks", target))
		}
	}
	return nil
}

func (x *extractor) resolvesInside(name, target string) bool {
	var stack []string // resolved components so far
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := splitPath(target)
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return false
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		t, ok := x.symlinks[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > 255 {
			return true // a loop: the kernel gives ELOOP, nothing escapes
		}
		if path.IsAbs(t) {
			return false
		}
		stack = stack[:len(stack)-1]
		todo = append(splitPath(t), todo...)
	}
	return true
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// dirModes returns the modes and times to give the directories created,
// deepest first.
func (x *extractor) dirModes(dir string) *DirModes {
	m := &DirModes{dir: dir, dirs: make([]dirMode, 0, len(x.dirs))}
	for name, meta := range x.dirs {
		m.dirs = append(m.dirs, dirMode{name: name, dirMeta: meta})
	}
	slices.SortFunc(m.dirs, func(a, b dirMode) int {
		if c := strings.Count(b.name, "/") - strings.Count(a.name, "/"); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return m
}

// DirModes holds what ExtractDeferred leaves undone: the permission bits
// and modification times the archive gives each directory it created.
type DirModes struct {
	dir  string    // the destination given to ExtractDeferred
	dirs []dirMode // deepest first
}

type dirMode struct {
	name string // slash-separated, relative to dir
	dirMeta
}

// Apply gives every directory ExtractDeferred created the permission bits
// (setuid, setgid and sticky removed) and modification time the archive
// gives it, deepest first, so that a directory the archive makes read-only
// or unsearchable does not stop its subdirectories from getting theirs. A
// directory without an entry of its own (an implicit parent) gets 0755 and
// keeps its time.
//
// Apply works on the destination by the name given to ExtractDeferred, so
// it must be called before the tree is moved, and it stays inside that
// directory. It changes nothing else: files and directories the caller
// added keep their own modes and times. It stops at the first directory it
// cannot change (for example one the caller removed) with an error naming
// it.
func (m *DirModes) Apply() error {
	if len(m.dirs) == 0 {
		return nil
	}
	root, err := os.OpenRoot(m.dir)
	if err != nil {
		return fmt.Errorf("unpack: set directory modes: %w", err)
	}
	defer root.Close()
	for _, d := range m.dirs {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return fmt.Errorf("unpack: entry %q: %w", d.name, err)
		}
		if !d.mtime.IsZero() {
			if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
				return fmt.Errorf("unpack: entry %q: %w", d.name, err)
			}
		}
	}
	return nil
}

// cleanName returns the slash-separated name an entry is extracted to,
// relative to the destination ("." for the destination itself).
func cleanName(name string) string {
	return path.Clean(strings.TrimLeft(name, "/"))
}

func unsafe(name, why string) error {
	return fmt.Errorf("unpack: entry %q: %w: %s", name, ErrUnsafe, why)
}

// CheckEntry validates one tar header against pushpull's rules without
// touching the disk; Extract calls it for every entry. It refuses, with an
// error wrapping ErrUnsafe that names the entry and the reason:
//   - empty names, names containing NUL, absolute names, and names that
//     escape the destination once cleaned (`../x`, `a/../../x`);
//   - symlinks with an empty or absolute target, or a relative target that,
//     resolved against the link's directory, leaves the destination;
//   - hard links whose target is empty, absolute or escaping;
//   - character and block devices, FIFOs, and any type other than regular
//     files, directories, symlinks, hard links and pax global headers.
//
// A name more than MaxDepth directories deep is refused with an error
// wrapping ErrTooLarge.
//
// Checks that need the rest of the archive (a parent that is a symlink, a
// hard link to a file not extracted, symlink chains) are Extract's.
func CheckEntry(h *tar.Header) error {
	name := h.Name
	if name == "" {
		return unsafe(name, "empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return unsafe(name, "name contains NUL")
	}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // metadata only, nothing is extracted
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return unsafe(name, "device node")
	case tar.TypeFifo:
		return unsafe(name, "FIFO")
	default:
		return unsafe(name, fmt.Sprintf("unsupported entry type %q", h.Typeflag))
	}
	if path.IsAbs(name) {
		return unsafe(name, "absolute path")
	}
	if Escapes(name) {
		return unsafe(name, "path escapes the build")
	}
	if d := strings.Count(cleanName(name), "/") + 1; d > MaxDepth {
		return fmt.Errorf("unpack: entry %.80q…: %w: %d directories deep, more than %d", name, ErrTooLarge, d, MaxDepth)
	}
	if h.Size < 0 {
		return unsafe(name, "negative size")
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		t := h.Linkname
		switch {
		case t == "":
			return unsafe(name, "symlink with an empty target")
		case strings.IndexByte(t, 0) >= 0:
			return unsafe(name, "symlink target contains NUL")
		case path.IsAbs(t):
			return unsafe(name, fmt.Sprintf("symlink to absolute path %q", t))
		case cleanName(name) == ".":
			return unsafe(name, "symlink replaces the destination")
		case Escapes(path.Join(path.Dir(cleanName(name)), t)):
			return unsafe(name, fmt.Sprintf("symlink target %q is outside the build", t))
		}
	case tar.TypeLink:
		t := h.Linkname
		switch {
		case t == "":
			return unsafe(name, "hard link with an empty target")
		case strings.IndexByte(t, 0) >= 0:
			return unsafe(name, "hard link target contains NUL")
		case path.IsAbs(t):
			return unsafe(name, fmt.Sprintf("hard link to absolute path %q", t))
		case Escapes(t) || cleanName(t) == ".":
			return unsafe(name, fmt.Sprintf("hard link target %q is outside the build", t))
		}
	}
	return nil
}
