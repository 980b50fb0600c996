package pulld

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/pushpull/pushpull/manifest"
)

// DefaultHostInfo is where Teletraan's provisioning writes the host_info
// file, so hosts provisioned for Teletraan's deploy agent report their
// groups without configuration.
const DefaultHostInfo = "/mnt/deployd/host_info"

// maxHostInfo bounds the host_info file pulld reads.
const maxHostInfo = 64 << 10

// ParseHostInfo parses Teletraan's host_info file: one key=value per line,
//
//	host=service-x-001
//	id=i-dcbcee23
//	groups=prod,servicex
//	compute_env_type=STAGING
//
// host, id, groups (comma-separated) and compute_env_type (COMPUTE_ENV_TYPE
// of the host's scripts) are kept; other keys are ignored,
// so a file written for a newer agent still parses. Blank lines and lines
// starting with # are skipped; spaces around keys, values and group names are
// trimmed; empty and repeated groups are dropped. A line without "=" or with
// an empty key is an error naming its line number.
func ParseHostInfo(data []byte) (manifest.HostInfo, error) {
	var hi manifest.HostInfo
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxHostInfo)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return manifest.HostInfo{}, fmt.Errorf("host_info line %d: want key=value, got %q", n, line)
		}
		switch k {
		case "host":
			hi.Hostname = v
		case "id":
			hi.ID = v
		case "compute_env_type":
			hi.ComputeEnvType = v
		case "groups":
			hi.Groups = nil
			for g := range strings.SplitSeq(v, ",") {
				if g = strings.TrimSpace(g); g != "" && !slices.Contains(hi.Groups, g) {
					hi.Groups = append(hi.Groups, g)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return manifest.HostInfo{}, fmt.Errorf("host_info: %w", err)
	}
	return hi, nil
}

// ReadHostInfo returns the host's facts: those of the host_info file at
// path, with hostname (the OS's) when the file names no host. A missing
// file is not an error: the host then reports only its hostname, as
// Teletraan's agent does. An empty path means no file.
func ReadHostInfo(path, hostname string) (manifest.HostInfo, error) {
	hi := manifest.HostInfo{}
	if path != "" {
		data, err := readLimited(path, maxHostInfo)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return manifest.HostInfo{Hostname: hostname}, fmt.Errorf("pulld: read host_info: %w", err)
		default:
			if hi, err = ParseHostInfo(data); err != nil {
				return manifest.HostInfo{Hostname: hostname}, fmt.Errorf("pulld: %s: %w", path, err)
			}
		}
	}
	if hi.Hostname == "" {
		hi.Hostname = hostname
	}
	return hi, nil
}

// readLimited reads at most limit bytes of the file at path and fails if
// there are more.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return buf.Bytes(), nil
}

// DefaultServer returns the server name a host uses when -server is not
// given: host= of the host_info file at path when set, else the OS hostname
// up to its first dot; lowercased either way. The result may still be an invalid name
// (Config.Validate says so); "" when nothing is known.
func DefaultServer(hostInfoPath string) string {
	if hi, err := ReadHostInfo(hostInfoPath, ""); err == nil && hi.Hostname != "" {
		return strings.ToLower(hi.Hostname)
	}
	name, _ := os.Hostname()
	name, _, _ = strings.Cut(name, ".")
	return strings.ToLower(name)
}
