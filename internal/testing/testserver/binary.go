package testserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// findBinary returns the path of the executable name: first in the bin/
// directory of the module enclosing the working directory, then on PATH.
// The error says how to install it.
func findBinary(name string) (string, error) {
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, "bin", name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in the module's bin/ or on PATH: run `make tools`", name)
}

// moduleRoot walks up from the working directory to the nearest directory
// holding a go.mod file. Tests run in their package's directory, so this is
// the root of the module under test.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testserver: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testserver: no go.mod above the working directory")
		}
		dir = parent
	}
}
