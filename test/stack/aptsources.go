package stack

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// aptSource is one repository of the machine's own apt configuration.
type aptSource struct {
	uri, suite string
	components []string
}

// line is the source in sources.list's one-line form, as mmdebstrap takes it.
func (a aptSource) line() string {
	return "deb " + a.uri + " " + a.suite + " " + strings.Join(a.components, " ")
}

// aptSourcesRoot is where the machine's apt configuration lives.
const aptSourcesRoot = "/etc/apt"

// hostAptSources are the machine's own apt repositories for suite (and its
// -updates and -security), from sources.list and sources.list.d (one-line and
// deb822 files), as apt-get reads them: the stack builds and feeds its workers from
// the mirror this machine uses, never from a host written into code.
func hostAptSources(root, suite string) ([]aptSource, error) {
	var out []aptSource
	files := []string{filepath.Join(root, "sources.list")}
	more, _ := filepath.Glob(filepath.Join(root, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		var got []aptSource
		var err error
		switch {
		case strings.HasSuffix(f, ".list"):
			got, err = oneLineSources(f)
		case strings.HasSuffix(f, ".sources"):
			got, err = deb822Sources(f)
		default:
			continue
		}
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, s := range got {
			if s.suite == suite || strings.HasPrefix(s.suite, suite+"-") {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no apt source for %s in %s (sources.list or sources.list.d): the real-boot workers use this machine's Debian mirror", suite, root)
	}
	return out, nil
}

// oneLineSources reads "deb [options] uri suite component..." lines.
func oneLineSources(path string) ([]aptSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []aptSource
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) >= 2 {
			out = append(out, aptSource{uri: fields[0], suite: fields[1], components: fields[2:]})
		}
	}
	return out, sc.Err()
}

// deb822Sources reads the stanzas of a .sources file.
func deb822Sources(path string) ([]aptSource, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []aptSource
	for _, stanza := range strings.Split(string(b), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			for _, suite := range strings.Fields(fields["suites"]) {
				out = append(out, aptSource{uri: uri, suite: suite, components: strings.Fields(fields["components"])})
			}
		}
	}
	return out, nil
}

// sourceHosts are the host names of the sources' URIs.
func sourceHosts(sources []aptSource) []string {
	var hosts []string
	for _, s := range sources {
		if u, err := url.Parse(s.uri); err == nil && u.Hostname() != "" && !slices.Contains(hosts, u.Hostname()) {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}
