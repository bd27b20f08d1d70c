package statefile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
)

// AppendLine adds v as one JSON line to the record at path (mode 0600, its directory
// 0700), written with O_APPEND in one write, so that concurrent processes (the
// cleanups of many jobs) never interleave within a line. The records it keeps (what
// jobs cost, which spot workers EC2 reclaimed) hold no secret; they are appended to,
// never rewritten, so a line is lost at worst, never a file.
func AppendLine(path string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}
