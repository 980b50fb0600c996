package release

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushpull/pushpull/blobstore"
)

// List prints app's packages to w, newest first, one a line, in aligned
// columns: package, built (UTC), commit (12 digits), user, dirty, note
// (on one line). An app without packages in the bucket (often a typo)
// prints nothing: the error wraps ErrNoPackages and names the apps the
// bucket has, or says it has none.
func List(ctx context.Context, store *blobstore.Store, app string, w io.Writer) error {
	infos, err := store.ListPackages(ctx, app)
	if err != nil {
		return fmt.Errorf("list %s: %w", app, err)
	}
	if len(infos) == 0 {
		return noPackages(ctx, store, app)
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

// noPackages is List's error for an app without packages: it names the
// apps the bucket has.
func noPackages(ctx context.Context, store *blobstore.Store, app string) error {
	apps, err := store.ListApps(ctx)
	if err != nil {
		return fmt.Errorf("%w of app %q in the bucket (and its apps could not be listed: %w)", ErrNoPackages, app, err)
	}
	apps = slices.DeleteFunc(apps, func(a string) bool { return a == app }) // a folder without packages
	if len(apps) == 0 {
		return fmt.Errorf("%w of app %q in the bucket; it has no packages at all", ErrNoPackages, app)
	}
	return fmt.Errorf("%w of app %q in the bucket; it has: %s", ErrNoPackages, app, strings.Join(apps, ", "))
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
