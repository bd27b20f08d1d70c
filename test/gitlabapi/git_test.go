package gitlabapi

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitNeedsAKnownJobToken clones over smart HTTP with real git: the token of a job
// the server handed out works, a wrong one gets GitLab's 401 and git's own words.
func TestGitNeedsAKnownJobToken(t *testing.T) {
	s := New()
	defer s.Close()
	s.ServeGit(t.TempDir())
	repo, err := s.NewRepo("group/demo", map[string]string{"README": "hello\n"})
	if err != nil {
		t.Fatal(err)
	}
	s.Expect(1, "good-token")
	dir := t.TempDir()
	clone := func(token, into string) (string, error) {
		out, err := exec.Command("git", "clone", s.RepoURL(repo.Path, token), filepath.Join(dir, into)).CombinedOutput()
		return string(out), err
	}
	if out, err := clone("good-token", "ok"); err != nil {
		t.Fatalf("clone with the job's token: %v\n%s", err, out)
	}
	out, err := clone("wrong-token", "denied")
	if err == nil {
		t.Fatalf("a clone with a wrong token worked:\n%s", out)
	}
	if !strings.Contains(out, "Authentication failed") || strings.Contains(out, "wrong-token") {
		t.Errorf("git said %q, want an authentication failure without the token", out)
	}
	if s.GitDenied() == 0 {
		t.Error("the server counted no refusal")
	}
	s.DenyGit("good-token")
	if out, err := clone("good-token", "revoked"); err == nil {
		t.Fatalf("a clone with a token denied Git worked:\n%s", out)
	}
}
