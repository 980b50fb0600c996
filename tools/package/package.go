package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pushpull/pushpull/manifest"
	"github.com/pushpull/pushpull/pkgformat"
)

// Config says what Build makes.
type Config struct {
	Module string // the module's root directory (holds go.mod and deploy/)
	Out    string // where the .deb files and trees go
	// Commit and Dirty identify the source; Built is the build time. They
	// make the Debian version (pkgformat.DebVersion), which pulld -version
	// prints too.
	Commit string
	Dirty  bool
	Built  time.Time
	// Programs limits the packages built to these programs (pulld, pushui,
	// release); nil builds all three.
	Programs []string
	// GOARCH is the architecture to build for; "" is the Go toolchain's.
	GOARCH string
}

// Built is one package Build made.
type Built struct {
	Name    manifest.PackageName // as release -format deb would name it (app = the program)
	Package string               // the Debian package name, pushpull-{program}
	Deb     string               // path of the .deb
	Tree    string               // path of the tree it was made from
}

// programs lists the programs packaged, in order.
var programs = []string{"pulld", "pushui", "release"}

//go:embed debian
var debianFiles embed.FS

// debArch is the Debian name of a GOARCH.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "riscv64": "riscv64", "ppc64le": "ppc64el", "s390x": "s390x"}

// Build builds each program and packages it as pushpull-{program}: the
// binary in /usr/bin, and for pulld its systemd unit (deploy/pulld.service,
// run from /usr/bin), /etc/default/pulld (a conffile holding PULLD_ARGS),
// /var/lib/pulld with mode 0711 and the maintainer scripts under
// debian/pulld/. It leaves each package's tree in Out/trees/{program},
// which release -format deb publishes as the same package.
func Build(ctx context.Context, cfg Config) ([]Built, error) {
	goarch := cfg.GOARCH
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	arch, ok := debArch[goarch]
	if !ok {
		return nil, fmt.Errorf("no Debian architecture for GOARCH %s", goarch)
	}
	want := cfg.Programs
	if want == nil {
		want = programs
	}
	var out []Built
	for _, prog := range want {
		b, err := build(ctx, cfg, prog, goarch, arch)
		if err != nil {
			return out, fmt.Errorf("%s: %w", prog, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func build(ctx context.Context, cfg Config, prog, goarch, arch string) (Built, error) {
	name, err := manifest.NewPackageName(prog, cfg.Built, cfg.Commit, cfg.Dirty, manifest.FormatDeb)
	if err != nil {
		return Built{}, err
	}
	version := pkgformat.DebVersion(name)
	b := Built{Name: name, Package: "pushpull-" + prog, Tree: filepath.Join(cfg.Out, "trees", prog)}
	b.Deb = filepath.Join(cfg.Out, fmt.Sprintf("%s_%s_%s.deb", b.Package, version, arch))
	if err := os.RemoveAll(b.Tree); err != nil {
		return Built{}, err
	}
	write := func(rel string, data []byte, mode fs.FileMode) error {
		p := filepath.Join(b.Tree, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, mode)
	}
	bin := filepath.Join(b.Tree, "usr", "bin", prog)
	ldflags := "-s -w -X github.com/pushpull/pushpull/internal/pulld.Version=" + version
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", ldflags, "-o", bin, "./cmd/"+prog)
	cmd.Dir = cfg.Module
	cmd.Env = append(os.Environ(), "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Built{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	control := fmt.Sprintf("Package: %s\nArchitecture: %s\nMaintainer: pushpull <pushpull@localhost>\nHomepage: https://github.com/pushpull/pushpull\nSection: admin\n", b.Package, arch)
	switch prog {
	case "pulld":
		control += "Description: pushpull's fleet daemon\n keeps this host serving what its manifests in the fleet's bucket say,\n installing packages through their Teletraan deploy scripts or dpkg.\n"
		unit, err := os.ReadFile(filepath.Join(cfg.Module, "deploy", "pulld.service"))
		if err != nil {
			return Built{}, err
		}
		unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/pulld"), []byte("/usr/bin/pulld"))
		unit = append([]byte("# Installed by the "+b.Package+" package; flags go in /etc/default/pulld.\n"), unit...)
		if err := write("lib/systemd/system/pulld.service", unit, 0o644); err != nil {
			return Built{}, err
		}
		readme, err := os.ReadFile(filepath.Join(cfg.Module, "README.md"))
		if err != nil {
			return Built{}, err
		}
		if err := write("usr/share/doc/pushpull/README.md", readme, 0o644); err != nil { // the unit's Documentation=
			return Built{}, err
		}
		for _, f := range []struct {
			src, dst string
			mode     fs.FileMode
		}{
			{"debian/pulld/default", "etc/default/pulld", 0o644},
			{"debian/pulld/postinst", "debian/postinst", 0o755},
			{"debian/pulld/prerm", "debian/prerm", 0o755},
			{"debian/pulld/postrm", "debian/postrm", 0o755},
		} {
			data, err := debianFiles.ReadFile(f.src)
			if err != nil {
				return Built{}, err
			}
			if err := write(f.dst, data, f.mode); err != nil {
				return Built{}, err
			}
		}
		root := filepath.Join(b.Tree, "var", "lib", "pulld")
		if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
			return Built{}, err
		}
		if err := os.Mkdir(root, 0o711); err != nil {
			return Built{}, err
		}
		if err := os.Chmod(root, 0o711); err != nil { // whatever the umask
			return Built{}, err
		}
	case "pushui":
		control += "Description: pushpull's web UI and JSON API\n where people pick which version of each app runs where.\n"
	case "release":
		control += "Description: pushpull's release tool\n packages a build into the fleet's bucket, for build pipelines.\n"
	default:
		return Built{}, errors.New("not one of pushpull's programs")
	}
	if err := write("debian/control", []byte(control), 0o644); err != nil {
		return Built{}, err
	}
	tree, err := pkgformat.WalkTree(b.Tree)
	if err != nil {
		return Built{}, err
	}
	var buf bytes.Buffer
	meta := manifest.PackageMeta{User: "pushpull", Host: "build", Built: name.Built}
	if err := tree.WriteDeb(ctx, &buf, name, meta, nil); err != nil {
		return Built{}, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Built{}, err
	}
	if err := os.WriteFile(b.Deb, buf.Bytes(), 0o644); err != nil {
		return Built{}, err
	}
	return b, nil
}
