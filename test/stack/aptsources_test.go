package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostAptSourcesReadBothFormats: one-line and deb822 files, options, disabled
// stanzas, other suites and types are handled as apt-get handles them.
func TestHostAptSourcesReadBothFormats(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sources.list", "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example.net/debian bookworm main contrib\ndeb-src http://mirror.example.net/debian bookworm main\ndeb http://old.example.net/debian bullseye main\n")
	write("sources.list.d/debian.sources", "Types: deb\nURIs: http://mirror.example.net/debian\nSuites: bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://security.example.net/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://off.example.net/x\nSuites: bookworm\nComponents: main\nEnabled: no\n")
	write("sources.list.d/other.list.disabled", "deb http://never.example.net/debian bookworm main\n")
	got, err := hostAptSources(root, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range got {
		lines = append(lines, s.line())
	}
	want := "deb http://mirror.example.net/debian bookworm main contrib|deb http://mirror.example.net/debian bookworm-updates main|deb http://security.example.net/debian-security bookworm-security main"
	if strings.Join(lines, "|") != want {
		t.Errorf("sources:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	if h := strings.Join(sourceHosts(got), " "); h != "mirror.example.net security.example.net" {
		t.Errorf("hosts %s", h)
	}
	if _, err := hostAptSources(t.TempDir(), "bookworm"); err == nil || !strings.Contains(err.Error(), "no apt source for bookworm") {
		t.Errorf("no sources: %v", err)
	}
}
