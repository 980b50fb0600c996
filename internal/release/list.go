package release

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushpull/pushpull/blobstore"
)

// List prints app's packages to w, newest first, one a line, in aligned
// columns: package, built (UTC), commit (12 digits), user, dirty, note
// (on one line). An app without packages prints only the header.
func List(ctx context.Context, store *blobstore.Store, app string, w io.Writer) error {
	infos, err := store.ListPackages(ctx, app)
	if err != nil {
		return fmt.Errorf("list %s: %w", app, err)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tBUILT\tCOMMIT\tUSER\tDIRTY\tNOTE")
	for _, i := range infos {
		commit := i.Meta.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		dirty := ""
		if i.Meta.Dirty {
			dirty = "dirty"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, i.Meta.Built.UTC().Format(time.DateTime), orDash(commit),
			orDash(oneLine(i.Meta.User)), orDash(dirty), oneLine(i.Meta.Note))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("list %s: %w", app, err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine replaces control characters (newlines, tabs) with spaces so an
// entry stays on its line and in its column.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
