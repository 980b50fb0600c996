package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfig checks how the environment and the rendered config file
// combine, and that a malformed file is an error rather than a default.
func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		file    string // "" for no -config
		want    config
		wantErr string
	}{
		{
			name: "environment only",
			env:  map[string]string{"PORT": "9001", "MESSAGE": "hi", "DRAIN_FILE": "/run/drain"},
			want: config{Port: "9001", Message: "hi", DrainFile: "/run/drain"},
		},
		{
			name: "file wins over the environment",
			env:  map[string]string{"PORT": "9001", "DRAIN_FILE": "/run/drain"},
			file: "# comment\n\nport=9002\nmessage = Hello from demo-1 \n",
			want: config{Port: "9002", Message: "Hello from demo-1", DrainFile: "/run/drain"},
		},
		{
			name: "an empty value leaves the environment's",
			env:  map[string]string{"PORT": "9001", "MESSAGE": "from the host"},
			file: "port=\nmessage=\n",
			want: config{Port: "9001", Message: "from the host"},
		},
		{
			name: "default message",
			file: "port=9003\n",
			want: config{Port: "9003", Message: "Hello from pushpull"},
		},
		{
			name:    "no port",
			file:    "message=hi\n",
			wantErr: "no port configured",
		},
		{
			name:    "unknown key",
			file:    "port=1\nmesage=typo\n",
			wantErr: `:2: unknown key "mesage"`,
		},
		{
			name:    "not key=value",
			file:    "port 1\n",
			wantErr: ":1: want key=value",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"PORT", "MESSAGE", "DRAIN_FILE"} {
				t.Setenv(k, tc.env[k])
			}
			var file string
			if tc.file != "" {
				file = filepath.Join(t.TempDir(), "hello.conf")
				if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := loadConfig(file)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadConfig: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("loadConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}
