// Command loopfwd forwards TCP connections on a loopback address to a Unix socket.
// The stack's real helper image runs it so that gitlab-runner-helper, inside a job
// container whose loopback is its own, reaches the stand-in jobs API at the very URL
// the runner uses on the host: the API also listens on a Unix socket bind-mounted
// into the container. It stands in for a worker's route to GitLab; the stack never
// opens a port off loopback.
//
//	loopfwd 127.0.0.1:18080 /run/gitlab-api/127.0.0.1:18080.sock
package main

import (
	"fmt"
	"net"
	"os"

	"github.com/ec2-executor/ec2-executor/engine"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: loopfwd LISTEN_ADDR UNIX_SOCKET")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopfwd:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loopfwd:", err)
			os.Exit(1)
		}
		go forward(c, os.Args[2])
	}
}

func forward(c net.Conn, socket string) {
	defer c.Close()
	u, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopfwd:", err)
		return
	}
	defer u.Close()
	engine.Splice(c, u)
}
