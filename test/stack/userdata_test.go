package stack

import (
	"bytes"
	"testing"
)

func TestKeyMaterialBlanksOnlyKeys(t *testing.T) {
	doc := func(client, host, extra string) []byte {
		return []byte("#cloud-config\nusers:\n  - name: w\n    ssh_authorized_keys:\n      - ssh-ed25519 " + client + " ec2-executor\n" +
			"ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    " + host +
			"\n    -----END OPENSSH PRIVATE KEY-----\n  ed25519_public: ssh-ed25519 " + host[:8] + " w\n" + extra)
	}
	blank := func(b []byte) []byte { return keyMaterial.ReplaceAll(b, []byte("KEY")) }
	a, b := doc("AAAAC3Nza+one/1=", "b3BlbnNzaC1rZXktdjEAAAAA\n    BG5vbmU=", ""), doc("AAAAC3Nza+two/2=", "c2Vjb25kLWtleS1ib2R5AAAA\n    AAAAAA==", "")
	if !bytes.Equal(blank(a), blank(b)) {
		t.Fatalf("two workers of one shape differ after blanking:\n%s\n---\n%s", blank(a), blank(b))
	}
	if c := doc("AAAAC3Nza+one/1=", "b3BlbnNzaC1rZXktdjEAAAAA\n    BG5vbmU=", "runcmd: [x]\n"); bytes.Equal(blank(a), blank(c)) {
		t.Fatal("user data of another shape blanked to the same")
	}
	if bytes.Contains(blank(a), []byte("AAAAC3Nza")) || bytes.Contains(blank(a), []byte("b3BlbnNz")) {
		t.Fatalf("key material left:\n%s", blank(a))
	}
}
