package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad: any settings file loads or fails with an error naming the file, and what
// loads either validates or names a field.
func FuzzLoad(f *testing.F) {
	f.Add(validTOML)
	f.Add("[instance]\ntypes = 7\n")
	f.Add("[worker.daemon_options]\nlog-opts = { max-size = \"1m\" }\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("load error does not name the file: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil && !strings.Contains(err.Error(), ":") {
			t.Fatalf("validation error names no field: %v", err)
		}
	})
}
