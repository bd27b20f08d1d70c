package cloudinit

import (
	"encoding/json"
	"fmt"
)

// The structs below fix the key order of the rendered YAML, which keeps golden files
// stable and the output readable.

type cloudConfig struct {
	Groups       []string  `yaml:"groups"`
	Users        []any     `yaml:"users,omitempty"`
	SSHKeys      *sshKeys  `yaml:"ssh_keys,omitempty"`
	SSHDeleteKey bool      `yaml:"ssh_deletekeys"`
	Packages     []string  `yaml:"packages,omitempty"`
	WriteFiles   []file    `yaml:"write_files,omitempty"`
	Runcmd       []command `yaml:"runcmd"`
}

type user struct {
	Name              string   `yaml:"name"`
	Groups            []string `yaml:"groups"`
	Shell             string   `yaml:"shell"`
	LockPasswd        bool     `yaml:"lock_passwd"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys"`
}

type sshKeys struct {
	Ed25519Private string `yaml:"ed25519_private"`
	Ed25519Public  string `yaml:"ed25519_public"`
}

type file struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Owner       string `yaml:"owner,omitempty"`
	Permissions string `yaml:"permissions,omitempty"`
}

// command is a runcmd entry: an argv list, or a string the shell runs (the
// operator's own commands).
type command any

func script(name, body string, args ...string) command {
	return append([]string{"sh", "-c", body, name}, args...)
}

// step is a script run through StepPath, so that its failure reaches the driver.
func step(name, body string, args ...string) command {
	return append([]string{StepPath, name, body}, args...)
}

// users are the worker's SSH user with its own authorized key (and the image's
// default user).
func users(w Login) []any {
	return []any{"default", user{Name: w.User, Groups: []string{"docker"}, Shell: "/bin/bash",
		LockPasswd: true, SSHAuthorizedKeys: []string{w.AuthorizedKey}}}
}

func document(w Login, o Options) (cloudConfig, error) {
	files, err := ownFiles(o)
	if err != nil {
		return cloudConfig{}, err
	}
	doc := cloudConfig{
		// The group must exist before the user is created, even when Docker is
		// installed later by runcmd.
		Groups:       []string{"docker"},
		Users:        users(w),
		SSHKeys:      &sshKeys{Ed25519Private: w.HostPrivateKey, Ed25519Public: w.HostPublicKey},
		SSHDeleteKey: true,
		Packages:     o.Packages,
		WriteFiles:   append(files, operatorFiles(o.WriteFiles)...),
		Runcmd:       append(dockerCommands(w, o), operatorCommands(o.Runcmd)...),
	}
	doc.Runcmd = append(doc.Runcmd, script("mark-ready", markReady, ReadyFile))
	seen := map[string]bool{}
	for _, f := range doc.WriteFiles {
		if seen[f.Path] {
			return doc, fmt.Errorf("write_files path %s is written twice (ec2-executor writes its own files under /etc/ec2-executor)", f.Path)
		}
		seen[f.Path] = true
	}
	return doc, nil
}

// ownFiles are the JSON fragments and the script that merges them on the worker.
func ownFiles(o Options) ([]file, error) {
	var files []file
	if daemon := o.daemonJSON(); len(daemon) > 0 {
		b, err := json.MarshalIndent(daemon, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encoding daemon.json options: %w", err)
		}
		files = append(files, file{Path: DaemonFragmentPath, Content: string(b) + "\n", Owner: "root:root", Permissions: "0644"})
	}
	if client := o.clientConfig(); len(client) > 0 {
		b, _ := json.MarshalIndent(client, "", "  ")
		files = append(files, file{Path: ConfigFragmentPath, Content: string(b) + "\n", Owner: "root:root", Permissions: "0600"})
		if o.InJobECR { // no secret in it: the helper fetches tokens when asked
			files = append(files, file{Path: JobDockerDir + "/config.json", Content: string(b) + "\n", Owner: "root:root", Permissions: "0644"})
		}
	}
	if len(files) > 0 {
		files = append(files, file{Path: MergeJSONPath, Content: mergeJSON, Owner: "root:root", Permissions: "0755"})
	}
	return append(files, file{Path: StepPath, Content: stepScript, Owner: "root:root", Permissions: "0755"}), nil
}

// dockerCommands install what is missing, merge the fragments and start Docker, in
// that order, so a fresh install starts once with the final daemon.json. Each runs
// as a step, whose failure the driver reads.
func dockerCommands(w Login, o Options) []command {
	cmds := []command{step("install-docker", installIfMissing, "docker", "docker", "docker.io")}
	if o.ECRCredentialHelper {
		cmds = append(cmds, step("install-ecr-credential-helper", installIfMissing,
			"docker-credential-ecr-login", "amazon-ecr-credential-helper"))
	}
	if len(o.daemonJSON()) > 0 {
		cmds = append(cmds, step("apply-daemon-json", applyDaemonJSON, MergeJSONPath, DaemonFragmentPath, DaemonJSONPath))
	}
	if o.InJobECR {
		cmds = append(cmds, step("copy-ecr-helper", copyECRHelper, JobECRHelper))
	}
	cmds = append(cmds, step("start-docker", startDocker))
	if len(o.clientConfig()) > 0 {
		cmds = append(cmds, step("apply-docker-config", applyClientConfig, MergeJSONPath, ConfigFragmentPath, w.User))
	}
	return cmds
}

func operatorFiles(fs []File) []file {
	out := make([]file, 0, len(fs))
	for _, f := range fs {
		out = append(out, file{Path: f.Path, Content: f.Content, Owner: f.Owner, Permissions: f.Permissions})
	}
	return out
}

func operatorCommands(cmds []string) []command {
	out := make([]command, 0, len(cmds))
	for _, c := range cmds {
		out = append(out, c)
	}
	return out
}
