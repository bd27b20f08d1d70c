package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strconv"
)

// ErrBatchTooBig means a batch's user data would not fit EC2's limit: launch fewer.
var ErrBatchTooBig = errors.New("the batch's user data is over EC2's user-data limit")

// keyPart is what differs between the workers of one batch.
type keyPart struct {
	Users   []any   `yaml:"users"`
	SSHKeys sshKeys `yaml:"ssh_keys"`
}

// RenderBatch returns user data for workers launched by one RunInstances call (EC2
// gives them all the same user data): a MIME multi-part document with one
// #cloud-config part they share and one per worker with its own SSH user key and host
// key, marked with the worker's launch index. cloud-init applies only the part whose
// Launch-Index matches the instance's ami-launch-index, so each worker of the batch
// still gets keys of its own. ws[i] is the worker at launch index i; all share a user.
func RenderBatch(ws []Login, o Options) ([]byte, error) {
	if len(ws) == 0 {
		return nil, errors.New("rendering a batch: no workers")
	}
	for i, w := range ws {
		if err := w.check(); err != nil {
			return nil, fmt.Errorf("rendering a batch: worker %d: %w", i, err)
		}
	}
	doc, err := document(ws[0], o)
	if err != nil {
		return nil, fmt.Errorf("rendering a batch: %w", err)
	}
	doc.Users, doc.SSHKeys = nil, nil
	shared, err := encode(doc, o.ExtraCloudConfig)
	if err != nil {
		return nil, fmt.Errorf("rendering a batch: %w", err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed; boundary=%q\r\nMIME-Version: 1.0\r\n\r\n", mw.Boundary())
	if err := writePart(mw, shared, -1); err != nil {
		return nil, err
	}
	for i, w := range ws {
		part, err := encode(keyPart{Users: users(w), SSHKeys: sshKeys{Ed25519Private: w.HostPrivateKey, Ed25519Public: w.HostPublicKey}}, "")
		if err != nil {
			return nil, fmt.Errorf("rendering a batch: worker %d: %w", i, err)
		}
		if err := writePart(mw, part, i); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxUserData {
		return nil, fmt.Errorf("%w: %d workers take %d bytes (limit %d)", ErrBatchTooBig, len(ws), buf.Len(), MaxUserData)
	}
	return buf.Bytes(), nil
}

// writePart adds one text/cloud-config part; index >= 0 marks it for that launch index.
func writePart(mw *multipart.Writer, body []byte, index int) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", `text/cloud-config; charset="us-ascii"`)
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Transfer-Encoding", "7bit")
	if index >= 0 {
		h.Set("Launch-Index", strconv.Itoa(index))
	}
	w, err := mw.CreatePart(h)
	if err == nil {
		_, err = w.Write(body)
	}
	if err != nil {
		return fmt.Errorf("rendering a batch: %w", err)
	}
	return nil
}
