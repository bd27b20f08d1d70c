package stages

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
)

// Job is the part of the runner's JOB_RESPONSE_FILE the driver uses. It decodes both
// the 17.5 (common.JobResponse) and HEAD (spec.Job) shapes: unknown keys are ignored,
// fields the driver does not use may have any type, and integers may arrive as strings.
type Job struct {
	ID        flexInt
	Token     string // secret: never logged
	Variables []Variable
	Image     Image
	Services  []Image
	// ServicesSent says the payload carried a services list; older payloads leave
	// services to CUSTOM_ENV_CI_JOB_SERVICES.
	ServicesSent bool
	Credentials  []Credential
	Timeout      flexInt // runner_info.timeout, seconds
}

// Variable is one job variable. Value may be a secret.
type Variable struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
	File   bool   `json:"file"`
	Masked bool   `json:"masked"`
}

// Image is an image or service definition.
type Image struct {
	Name         string       `json:"name"`
	Alias        string       `json:"alias"`
	Command      []string     `json:"command"`
	Entrypoint   []string     `json:"entrypoint"`
	PullPolicy   []string     `json:"pull_policy"`
	Variables    []Variable   `json:"variables"`
	ExecutorOpts executorOpts `json:"executor_opts"`
}

type executorOpts struct {
	Docker struct {
		Platform string     `json:"platform"`
		User     flexString `json:"user"`
	} `json:"docker"`
}

// Credential is one entry of the payload's credentials[]. Password is a secret.
type Credential struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// ReadJob decodes the job payload file. Errors name the file and the field, never
// the content (it holds the job token and every variable).
func ReadJob(path string) (Job, error) {
	if path == "" {
		return Job{}, errors.New("JOB_RESPONSE_FILE is not set: is this process run by gitlab-runner?")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Job{}, fmt.Errorf("reading job payload: %w", err)
	}
	job, err := DecodeJob(data)
	if err != nil {
		return Job{}, fmt.Errorf("job payload %s: %w", path, err)
	}
	return job, nil
}

// DecodeJob decodes each field the driver uses on its own, so one odd field elsewhere
// in the payload cannot break the job.
func DecodeJob(data []byte) (Job, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Job{}, fmt.Errorf("not a JSON object (%s)", jsonProblem(err))
	}
	var job Job
	var runnerInfo struct {
		Timeout flexInt `json:"timeout"`
	}
	var errs []error
	field := func(name string, into any) {
		raw, ok := top[name]
		if !ok || string(raw) == "null" {
			return
		}
		if err := json.Unmarshal(raw, into); err != nil {
			errs = append(errs, fmt.Errorf("field %s: %s", name, jsonProblem(err)))
		}
	}
	field("id", &job.ID)
	field("token", &job.Token)
	field("variables", &job.Variables)
	field("image", &job.Image)
	field("services", &job.Services)
	_, job.ServicesSent = top["services"]
	field("credentials", &job.Credentials)
	field("runner_info", &runnerInfo)
	job.Timeout = runnerInfo.Timeout
	return job, errors.Join(errs...)
}

// RegistryCredentials returns the credentials[] entries of type registry.
func (j Job) RegistryCredentials() []Credential {
	var out []Credential
	for _, c := range j.Credentials {
		if c.Type == "registry" && c.URL != "" {
			out = append(out, c)
		}
	}
	return out
}

// flexInt accepts a JSON number or a string holding one.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A full UnmarshalTypeError: its Error method needs Type.
		return &json.UnmarshalTypeError{Value: "non-integer", Type: reflect.TypeFor[int64]()}
	}
	*f = flexInt(n)
	return nil
}

// flexString accepts a JSON string or number (executor_opts.docker.user is either at HEAD).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// jsonProblem describes a JSON error without quoting the document (it holds secrets).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case strings.Contains(err.Error(), "unexpected end of JSON input"):
		return "truncated"
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s has the wrong type (%s)", typ.Field, typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("wrong type (%s)", typ.Value)
	default:
		return "unreadable"
	}
}
