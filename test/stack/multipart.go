package stack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// cloudConfigFor returns the #cloud-config documents an instance with launchIndex
// applies from its user data, as cloud-init does: a plain document as it is; of a
// MIME multi-part one, the text/cloud-config parts with no Launch-Index or with the
// instance's own (cloud-init's launch_index filter).
func cloudConfigFor(userData []byte, launchIndex int) ([][]byte, error) {
	if !bytes.HasPrefix(userData, []byte("Content-Type: multipart/")) {
		return [][]byte{userData}, nil
	}
	head, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(userData))).ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("reading the user data's MIME headers: %w", err)
	}
	_, params, err := mime.ParseMediaType(head.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, fmt.Errorf("user data is multi-part without a boundary (%v)", err)
	}
	r := multipart.NewReader(bytes.NewReader(userData), params["boundary"])
	var docs [][]byte
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading a user-data part: %w", err)
		}
		if !strings.HasPrefix(part.Header.Get("Content-Type"), "text/cloud-config") {
			return nil, fmt.Errorf("user-data part of type %q: the stack plays cloud-config parts only", part.Header.Get("Content-Type"))
		}
		if idx := part.Header.Get("Launch-Index"); idx != "" && idx != strconv.Itoa(launchIndex) {
			continue
		}
		body, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		docs = append(docs, body)
	}
}

// mergeCloudConfigs merges documents as cloud-init's default merger does for
// cloud-config parts (top-level keys of later parts replace earlier ones).
func mergeCloudConfigs(docs [][]byte) ([]byte, error) {
	if len(docs) == 1 {
		return docs[0], nil
	}
	merged := map[string]any{}
	for _, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			return nil, fmt.Errorf("parsing a user-data part: %w", err)
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	out, err := yaml.Marshal(merged)
	return append([]byte("#cloud-config\n"), out...), err
}
