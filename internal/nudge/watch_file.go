package nudge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// attrsSuffix is the sidecar fileblob keeps beside every object, holding
// its metadata and the MD5 that is the object's version.
const attrsSuffix = ".attrs"

// WatchFile nudges whenever the file at path, or the ".attrs" sidecar that
// gocloud's fileblob keeps beside it, is created, written, renamed or
// removed. It watches path's directory, because writers replace the file by
// renaming a temporary file onto it, which a watch on the file itself would
// lose. The directory is created when missing (it is the servers/ folder of
// a file:// bucket, which pulld may see before any manifest is written).
//
// Several events for one write give several nudges, which pulld coalesces.
// File returns ctx.Err() when ctx ends, and an error when the watch cannot
// be set up; watcher errors after that (such as an event-queue overflow)
// are logged and answered with a nudge, since an event may have been lost.
func WatchFile(ctx context.Context, path string, h Hooks) error {
	dir, base := filepath.Split(filepath.Clean(path))
	if base == "" || base == "." || base == "/" {
		return fmt.Errorf("nudge: watch file: %q names no file", path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nudge: watch file: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("nudge: watch file: %w", err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("nudge: watch file: watch %s: %w", dir, err)
	}
	log := h.logger().With("source", "file", "path", path)
	h.ready()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("nudge: watch file: watcher closed")
			}
			if n := filepath.Base(ev.Name); n == base || n == base+attrsSuffix {
				h.Nudge()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("nudge: watch file: watcher closed")
			}
			log.Warn("file watch error", "err", err)
			h.Nudge()
		}
	}
}
