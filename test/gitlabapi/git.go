package gitlabapi

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// GitUser is the user GitLab takes the job token from on Git over HTTP.
const GitUser = "gitlab-ci-token"

// gitHandler serves the repositories under root over Git's smart HTTP protocol with
// real git (`git http-backend`), behind GitLab's job-token check: basic auth as
// gitlab-ci-token with the token of a job the server handed out, 401 otherwise.
func (s *Server) gitHandler(root string) http.Handler {
	backend := &cgi.Handler{Path: gitPath(), Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, ".git/") {
			http.NotFound(w, r)
			return
		}
		user, token, ok := r.BasicAuth()
		s.mu.Lock()
		denied := s.gitDeny[token]
		s.mu.Unlock()
		if !ok || user != GitUser || !s.knownToken(token) || denied {
			s.mu.Lock()
			s.gitDenied++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
			http.Error(w, "HTTP Basic: Access denied", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})
}

func gitPath() string {
	if p, err := exec.LookPath("git"); err == nil {
		return p
	}
	return "/usr/bin/git"
}

// knownToken reports whether token is the token of a job the server knows.
func (s *Server) knownToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		if token != "" && j.token == token {
			return true
		}
	}
	return false
}

// DenyGit makes the server refuse token on Git (and only there), as GitLab refuses
// a job token that has lost access to the project.
func (s *Server) DenyGit(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gitDeny[token] = true
}

// GitDenied counts the Git requests refused for a missing or wrong job token.
func (s *Server) GitDenied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gitDenied
}

// RepoURL is a project's clone URL as GitLab puts it in a job's payload: the job's
// token in the user info.
func (s *Server) RepoURL(project, token string) string {
	return strings.Replace(s.URL, "://", "://"+GitUser+":"+token+"@", 1) + project + ".git"
}

// Repo is a bare repository the server serves, and a work tree to commit to it.
type Repo struct {
	Path string // the project path, group/name
	bare string
	work string
}

// NewRepo creates the bare repository for project (group/name) with a first commit
// of files on main, and returns it.
func (s *Server) NewRepo(project string, files map[string]string) (*Repo, error) {
	if s.gitRoot == "" {
		return nil, fmt.Errorf("the server serves no git: call ServeGit first")
	}
	r := &Repo{Path: project, bare: filepath.Join(s.gitRoot, project+".git"), work: filepath.Join(s.gitRoot, ".work", project)}
	if err := os.MkdirAll(filepath.Dir(r.bare), 0o755); err != nil {
		return nil, err
	}
	if _, err := git("", "init", "-q", "--bare", "-b", "main", r.bare); err != nil {
		return nil, err
	}
	if _, err := git("", "init", "-q", "-b", "main", r.work); err != nil {
		return nil, err
	}
	if _, err := r.git("remote", "add", "origin", r.bare); err != nil {
		return nil, err
	}
	if _, err := r.Commit("first commit", files); err != nil {
		return nil, err
	}
	return r, nil
}

// Commit writes files in the work tree, commits them, pushes main and returns the
// commit's SHA.
func (r *Repo) Commit(message string, files map[string]string) (string, error) {
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", message}, {"push", "-q", "origin", "main"}} {
		if _, err := r.git(args...); err != nil {
			return "", err
		}
	}
	return r.git("rev-parse", "HEAD")
}

// Tag tags the last commit and pushes the tag.
func (r *Repo) Tag(name string) error {
	if _, err := r.git("tag", name); err != nil {
		return err
	}
	_, err := r.git("push", "-q", "origin", name)
	return err
}

// AddSubmodule adds sub at path with a URL relative to this project, as GitLab
// recommends (it then takes the superproject's credentials), commits and pushes.
func (r *Repo) AddSubmodule(sub *Repo, path string) (string, error) {
	rel, err := filepath.Rel(filepath.Dir(r.Path), sub.Path)
	if err != nil {
		return "", err
	}
	// The work tree clones the submodule from disk; .gitmodules keeps the relative URL.
	if _, err := r.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", sub.bare, path); err != nil {
		return "", err
	}
	if _, err := r.git("config", "-f", ".gitmodules", "submodule."+path+".url", "../"+rel+".git"); err != nil {
		return "", err
	}
	return r.Commit("add submodule "+path, nil)
}

func (r *Repo) git(args ...string) (string, error) { return git(r.work, args...) }

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command(gitPath(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=stack", "GIT_AUTHOR_EMAIL=stack@example.invalid",
		"GIT_COMMITTER_NAME=stack", "GIT_COMMITTER_EMAIL=stack@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}
