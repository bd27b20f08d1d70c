package engine

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KeyPair is an ed25519 key pair in the forms OpenSSH and cloud-init use.
type KeyPair struct {
	// Private is an OpenSSH PEM private key. It is a secret: it lives only in the
	// job's 0600 state file (client key) or in the worker's user data (host key).
	Private string
	// Public is in authorized_keys format, without a trailing newline.
	Public string
}

// Keys are the two per-instance key pairs: the client key the driver logs in with,
// and the host key the worker's sshd presents and the driver pins.
type Keys struct {
	Client KeyPair
	Host   KeyPair
}

// NewKeys generates fresh key pairs for one worker.
func NewKeys(comment string) (Keys, error) {
	client, err := newKeyPair(comment + "-client")
	if err != nil {
		return Keys{}, fmt.Errorf("generating client key: %w", err)
	}
	host, err := newKeyPair(comment + "-host")
	if err != nil {
		return Keys{}, fmt.Errorf("generating host key: %w", err)
	}
	return Keys{Client: client, Host: host}, nil
}

func newKeyPair(comment string) (KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return KeyPair{}, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return KeyPair{}, err
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment
	return KeyPair{Private: string(pem.EncodeToMemory(block)), Public: authorized}, nil
}
