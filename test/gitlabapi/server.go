// Package gitlabapi is a small stand-in for GitLab's jobs API, enough for a real
// gitlab-runner's `run-single` to take jobs from it, send their logs and say how
// they ended (runner-protocol.md §8): POST jobs/request hands out queued payloads,
// PATCH jobs/:id/trace appends to the job's log, PUT jobs/:id records its state,
// POST jobs/:id/artifacts keeps what the helper uploads, given the job's token as
// GitLab wants it (JOB-TOKEN), and lists the files in its zip, and GET
// jobs/:id/artifacts hands the archive to a later job's artifacts-downloader. With
// ServeGit it also serves Git repositories over smart HTTP behind the job-token check
// (git.go). A job can be cancelled from the "server": both PATCH and PUT then answer
// `Job-Status: canceling`, which is what the runner acts on.
package gitlabapi

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Server is the stand-in, on a loopback port.
type Server struct {
	URL   string
	srv   *httptest.Server
	mux   *http.ServeMux
	unix  *http.Server
	mu    sync.Mutex
	queue [][]byte
	jobs  map[int]*Job
	// gitRoot holds the bare repositories ServeGit serves; gitDenied counts refusals.
	gitRoot   string
	gitDeny   map[string]bool
	gitDenied int
}

// Job is what the server knows of one job it handed out.
type Job struct {
	ID            int
	State         string // running, success, failed
	FailureReason string
	ExitCode      int
	Artifacts     int      // bytes uploaded
	ArtifactFiles []string // the files in the uploaded archives
	// Reports are the artifact types of the reports uploaded (junit, ...).
	Reports []string
	// Downloads counts the times a later job downloaded this job's archive.
	Downloads int
	archive   []byte // the last archive uploaded (artifact_type archive)
	token     string
	trace     bytes.Buffer
	cancel    bool
	done      chan struct{}
}

// New starts the server.
func New() *Server {
	s := &Server{jobs: map[int]*Job{}, gitDeny: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v4/jobs/request", s.request)
	mux.HandleFunc("PATCH /api/v4/jobs/{id}/trace", s.patchTrace)
	mux.HandleFunc("PUT /api/v4/jobs/{id}", s.update)
	mux.HandleFunc("POST /api/v4/jobs/{id}/artifacts", s.artifacts)
	mux.HandleFunc("GET /api/v4/jobs/{id}/artifacts", s.download)
	s.srv = httptest.NewServer(mux)
	s.mux = mux
	s.URL = s.srv.URL + "/"
	return s
}

// Close stops the server.
func (s *Server) Close() {
	if s.unix != nil {
		_ = s.unix.Close()
	}
	s.srv.Close()
}

// ServeUnix also answers on a Unix socket at path (mode 0666, so a job container's
// user can connect), for job containers that reach the API through a forwarder.
func (s *Server) ServeUnix(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return err
	}
	s.unix = &http.Server{Handler: s.srv.Config.Handler}
	go func() { _ = s.unix.Serve(l) }()
	return nil
}

// ServeGit serves the bare repositories under root (NewRepo makes them) at
// URL/<group>/<project>.git, to the token of any job the server knows.
func (s *Server) ServeGit(root string) {
	s.mu.Lock()
	s.gitRoot = root
	s.mu.Unlock()
	s.mux.Handle("/", s.gitHandler(root))
}

// Queue adds a job payload (the body of a jobs/request answer) and returns its record.
func (s *Server) Queue(payload []byte) (*Job, error) {
	var p struct {
		ID    int    `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("job payload: %w", err)
	}
	j := s.Expect(p.ID, p.Token)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, payload)
	return j, nil
}

// Expect records a job that a runner got some other way (the runner simulator hands
// out its own), so its uploads are accepted with its token.
func (s *Server) Expect(id int, token string) *Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := &Job{ID: id, token: token, done: make(chan struct{})}
	s.jobs[id] = j
	return j
}

// Job is the record of job id, nil when the server never heard of it.
func (s *Server) Job(id int) *Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

// Cancel makes the server answer the job's next PATCH and PUT with Job-Status: canceling.
func (s *Server) Cancel(j *Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.cancel = true
}

// Trace is the job's log as the runner sent it so far.
func (s *Server) Trace(j *Job) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return j.trace.String()
}

// Done is closed when the runner reported the job's final state.
func (j *Job) Done() <-chan struct{} { return j.done }

func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	payload := s.queue[0]
	s.queue = s.queue[1:]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(payload)
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) *Job {
	id, _ := strconv.Atoi(r.PathValue("id"))
	j := s.jobs[id]
	if j == nil {
		http.Error(w, "no such job", http.StatusNotFound)
	}
	return j
}

// patchTrace appends the runner's chunk when it starts where the log ends; otherwise
// it answers 416 with the log's range, as GitLab does, so the runner resends.
func (s *Server) patchTrace(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.job(w, r)
	if j == nil {
		return
	}
	start, _, _ := strings.Cut(r.Header.Get("Content-Range"), "-")
	if n, err := strconv.Atoi(start); err != nil || n != j.trace.Len() {
		w.Header().Set("Range", fmt.Sprintf("0-%d", j.trace.Len()))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	j.trace.Write(body)
	s.status(w, j)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	var u struct {
		State         string `json:"state"`
		FailureReason string `json:"failure_reason"`
		ExitCode      int    `json:"exit_code"`
	}
	_ = json.NewDecoder(r.Body).Decode(&u)
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.job(w, r)
	if j == nil {
		return
	}
	s.status(w, j)
	if u.State == "success" || u.State == "failed" {
		if j.State != "success" && j.State != "failed" {
			defer close(j.done)
		}
		j.FailureReason, j.ExitCode = u.FailureReason, u.ExitCode
	}
	j.State = u.State
	w.WriteHeader(http.StatusOK)
}

// artifacts takes an upload as GitLab does: the job's token in JOB-TOKEN, the
// archive in the multipart field "file".
func (s *Server) artifacts(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.job(w, r)
	s.mu.Unlock()
	if j == nil {
		return
	}
	if r.Header.Get("JOB-TOKEN") != j.token {
		http.Error(w, "403 Forbidden", http.StatusForbidden)
		return
	}
	body, err := formFile(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	kind := r.URL.Query().Get("artifact_type")
	var files []string
	if kind == "" || kind == "archive" {
		if files, err = zipFiles(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j.Artifacts += len(body)
	if files != nil {
		j.ArtifactFiles = append(j.ArtifactFiles, files...)
		j.archive = body
	} else {
		j.Reports = append(j.Reports, kind)
	}
	w.WriteHeader(http.StatusCreated)
}

// download hands a job's archive to a later job, given a token of a job the server
// knows (GitLab checks the requesting job's token), as artifacts-downloader asks.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	if !s.knownToken(r.Header.Get("JOB-TOKEN")) {
		http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.job(w, r)
	if j == nil {
		return
	}
	if j.archive == nil {
		http.Error(w, "404 Not Found", http.StatusNotFound)
		return
	}
	j.Downloads++
	w.Header().Set("Content-Type", "application/zip")
	_, _ = w.Write(j.archive)
}

// ArchiveSize is the size of the archive job id uploaded, 0 if none.
func (s *Server) ArchiveSize(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil {
		return len(j.archive)
	}
	return 0
}

// formFile reads the upload's "file" part.
func formFile(r *http.Request) ([]byte, error) {
	f, _, err := r.FormFile("file")
	if err != nil {
		return nil, fmt.Errorf("no artifacts file: %w", err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// zipFiles lists a zip archive's entries.
func zipFiles(body []byte) ([]string, error) {
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, fmt.Errorf("artifacts file is not a zip: %w", err)
	}
	names := []string{}
	for _, e := range zr.File {
		names = append(names, e.Name)
	}
	return names, nil
}

func (s *Server) status(w http.ResponseWriter, j *Job) {
	if j.cancel {
		w.Header().Set("Job-Status", "canceling")
	}
}
