package dockerauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dockerConfig is the part of a Docker config.json that holds credentials.
type dockerConfig struct {
	Auths map[string]struct {
		Auth     string `json:"auth"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// entry is one registry key a source has a credential for: a static login, or a
// helper to ask when the key matches (so helpers run only for the image pulled).
type entry struct {
	key    string
	source string
	cred   Credential
	helper string
}

// parseDockerConfig reads a config.json document into entries with the Docker CLI's
// layering: auths, then credsStore, then credHelpers, each later layer replacing an
// earlier one for the same registry. A helper name with a path refuses the whole
// source. Errors name the source and the registry key, never a secret.
func parseDockerConfig(ctx context.Context, doc, source string, h HelperAPI) ([]entry, []string, error) {
	var cfg dockerConfig
	if err := json.Unmarshal([]byte(doc), &cfg); err != nil {
		return nil, nil, fmt.Errorf("%s is not valid JSON (%s); skipping it", source, jsonProblem(err))
	}
	for _, name := range append(helperNames(cfg.CredHelpers), cfg.CredsStore) {
		if err := checkHelperName(name); name != "" && err != nil {
			return nil, nil, fmt.Errorf("%s: %w; skipping it", source, err)
		}
	}
	byKey := map[string]entry{}
	warnings := addAuths(byKey, cfg, source)
	if cfg.CredsStore != "" && h != nil {
		keys, err := h.List(ctx, cfg.CredsStore)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: credsStore: %v", source, err))
		}
		for _, k := range keys {
			byKey[NormalizeKey(k)] = entry{key: NormalizeKey(k), source: source + " credsStore " + cfg.CredsStore, helper: cfg.CredsStore}
		}
	}
	for k, helper := range cfg.CredHelpers {
		if h != nil {
			byKey[NormalizeKey(k)] = entry{key: NormalizeKey(k), source: source + " credHelpers " + helper, helper: helper}
		}
	}
	out := make([]entry, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, warnings, nil
}

func addAuths(byKey map[string]entry, cfg dockerConfig, source string) []string {
	var warnings []string
	for key, a := range cfg.Auths {
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			u, p, err := decodeAuth(a.Auth)
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("%s: auths[%q].auth %s; skipping that entry", source, key, err))
				continue
			}
			user, pass = u, p
		}
		if user == "" && pass == "" {
			continue // an empty entry (docker login with a credsStore) carries no login
		}
		k := NormalizeKey(key)
		byKey[k] = entry{key: k, source: source, cred: Credential{Key: k, Username: user, Password: pass, Source: source}}
	}
	return warnings
}

func helperNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func decodeAuth(s string) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("is not base64 of user:password")
	}
	return user, pass, nil
}

// jsonProblem describes a JSON error without quoting the document (it holds secrets).
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	default:
		return "unreadable"
	}
}

// ManagerConfig reads the manager's Docker config.json, as the docker executor reads
// the runner user's: path, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
// It returns the path it read and the document; a missing file is no document and no
// error, an unreadable one an error (a warning for the caller: the source is skipped).
func ManagerConfig(path string) (string, string, error) {
	if path == "" {
		dir := os.Getenv("DOCKER_CONFIG")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".docker")
		}
		path = filepath.Join(dir, "config.json")
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return path, "", err
	}
	return path, string(b), nil
}
