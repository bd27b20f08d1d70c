// Command release packages the binaries `make release` built: a .deb and an .rpm per
// architecture (with the kept nfpm library), the systemd units pointing at
// /usr/bin, and SHA256SUMS over every artefact. File times come from the commit, so
// two runs on one commit give the same bytes.
//
//	go run ./release -version 1.2.3 -dist dist -mtime 1700000000
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

func main() {
	version := flag.String("version", "", "the version to stamp (required)")
	dist := flag.String("dist", "dist", "where the binaries are and the packages go")
	mtime := flag.Int64("mtime", 0, "Unix time for every file in the packages (the commit's)")
	flag.Parse()
	if err := release(*version, *dist, time.Unix(*mtime, 0).UTC()); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func release(version, dist string, mtime time.Time) error {
	if version == "" {
		return fmt.Errorf("-version is required")
	}
	if err := units(dist); err != nil {
		return err
	}
	for _, arch := range []string{"amd64", "arm64"} {
		for _, format := range []string{"deb", "rpm"} {
			if err := pack(dist, arch, format, packageVersion(version), mtime); err != nil {
				return fmt.Errorf("packaging %s for %s: %w", format, arch, err)
			}
		}
	}
	return sums(dist)
}

// packageVersion is the version as packages take it: a tag without its "v", or,
// for a build between tags, 0.0.0 with the commit (dpkg wants a leading digit).
func packageVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if !semver.MatchString(v) {
		return "0.0.0+git." + strings.ReplaceAll(v, "-", ".")
	}
	return v
}

var semver = regexp.MustCompile(`^\d+\.\d+\.\d+`)

// Units are the systemd units in examples/systemd that the packages ship.
var Units = []string{"ec2-executor-pool.service", "ec2-executor-pool@.service", "ec2-executor-reap.service", "ec2-executor-reap.timer"}

// units writes the systemd units with the packaged binary's path.
func units(dist string) error {
	dir := filepath.Join(dist, "units")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, u := range Units {
		b, err := os.ReadFile(filepath.Join("examples", "systemd", u))
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/"), []byte("/usr/bin/"))
		if err := os.WriteFile(filepath.Join(dir, u), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func pack(dist, arch, format, version string, mtime time.Time) error {
	def, err := os.ReadFile(filepath.Join("release", "nfpm.yaml"))
	if err != nil {
		return err
	}
	vars := map[string]string{"ARCH": arch, "VERSION": version, "DIST": dist}
	cfg, err := nfpm.ParseWithEnvMapping(bytes.NewReader(def), func(k string) string { return vars[k] })
	if err != nil {
		return err
	}
	info, err := cfg.Get(format)
	if err != nil {
		return err
	}
	info.MTime = mtime
	for _, c := range info.Contents {
		if c.FileInfo != nil {
			c.FileInfo.MTime = mtime
		}
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return err
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(dist, packager.ConventionalFileName(info)))
	if err != nil {
		return err
	}
	defer out.Close()
	return packager.Package(info, out)
}

// sums writes SHA256SUMS over the binaries and packages, sorted by name.
func sums(dist string) error {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return err
	}
	var lines []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SHA256SUMS" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dist, e.Name()))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+e.Name())
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return os.WriteFile(filepath.Join(dist, "SHA256SUMS"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
