package manifest

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// PackageMeta is the metadata stored on every package object (blob metadata,
// lowercase keys) and returned by every listing. SHA256 is mandatory: pulld
// refuses a package whose bytes do not hash to it.
type PackageMeta struct {
	App    string
	Commit string // full commit as given to release
	Branch string
	Repo   string
	Built  time.Time
	User   string
	Host   string
	Dirty  bool
	Note   string
	SHA256 string // lowercase hex of the whole object
	Format Format
	// Size is the bytes of file contents the package unpacks to, recorded
	// by release so that a host can check its free space before it writes
	// anything, and stop as soon as an archive unpacks to more. 0 means
	// unknown (packages released before it was recorded).
	Size int64
}

// Metadata keys, as stored on the object.
const (
	MetaApp    = "app"
	MetaCommit = "commit"
	MetaBranch = "branch"
	MetaRepo   = "repo"
	MetaBuilt  = "built"
	MetaUser   = "user"
	MetaHost   = "host"
	MetaDirty  = "dirty"
	MetaNote   = "note"
	MetaSHA256 = "sha256"
	MetaFormat = "format"
	MetaSize   = "size"
)

// Map returns the metadata as blob metadata.
func (m PackageMeta) Map() map[string]string {
	md := map[string]string{
		MetaApp:    m.App,
		MetaCommit: m.Commit,
		MetaBranch: m.Branch,
		MetaRepo:   m.Repo,
		MetaBuilt:  m.Built.UTC().Format(time.RFC3339),
		MetaUser:   m.User,
		MetaHost:   m.Host,
		MetaDirty:  strconv.FormatBool(m.Dirty),
		MetaNote:   m.Note,
		MetaSHA256: m.SHA256,
		MetaFormat: string(m.Format),
	}
	if m.Size > 0 {
		md[MetaSize] = strconv.FormatInt(m.Size, 10)
	}
	return md
}

// ParsePackageMeta reads blob metadata back. It fails when sha256 is
// missing or malformed, or when built, dirty, size or format do not parse;
// the descriptive fields may be empty, and size may be missing.
func ParsePackageMeta(md map[string]string) (PackageMeta, error) {
	m := PackageMeta{
		App:    md[MetaApp],
		Commit: md[MetaCommit],
		Branch: md[MetaBranch],
		Repo:   md[MetaRepo],
		User:   md[MetaUser],
		Host:   md[MetaHost],
		Note:   md[MetaNote],
		SHA256: md[MetaSHA256],
	}
	if err := CheckSHA256(m.SHA256); err != nil {
		return PackageMeta{}, fmt.Errorf("package metadata: %w", err)
	}
	if s := md[MetaBuilt]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return PackageMeta{}, fmt.Errorf("package metadata: built %q is not RFC 3339", s)
		}
		m.Built = t.UTC()
	}
	if s := md[MetaDirty]; s != "" {
		d, err := strconv.ParseBool(s)
		if err != nil {
			return PackageMeta{}, fmt.Errorf("package metadata: dirty %q is not true or false", s)
		}
		m.Dirty = d
	}
	if s := md[MetaSize]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return PackageMeta{}, fmt.Errorf("package metadata: size %q is not a byte count", s)
		}
		m.Size = n
	}
	if s := md[MetaFormat]; s != "" {
		f, err := ParseFormat(s)
		if err != nil {
			return PackageMeta{}, fmt.Errorf("package metadata: %w", err)
		}
		m.Format = f
	}
	return m, nil
}

// CheckSHA256 reports whether s is 64 lowercase hex digits.
func CheckSHA256(s string) error {
	if len(s) != 64 || !isHex(s) {
		return fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fmt.Errorf("sha256 %q: %v", s, err)
	}
	return nil
}
