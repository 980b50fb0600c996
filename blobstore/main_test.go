package blobstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
)

func contextBackground() context.Context { return context.Background() }

func TestMain(m *testing.M) {
	if dir := os.Getenv("BLOBSTORE_TEST_CHILD_DIR"); dir != "" {
		n, _ := strconv.Atoi(os.Getenv("BLOBSTORE_TEST_CHILD_N"))
		if err := childIncrement(dir, n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
