package engine

import (
	"slices"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// TestHealthPortsAsTheDockerExecutorPicksThem: HEALTHCHECK_TCP_PORT (any case) wins,
// else the exposed TCP ports in order, 20 at most; a bad value is an error.
func TestHealthPortsAsTheDockerExecutorPicksThem(t *testing.T) {
	exposed := nat.PortSet{"2376/tcp": {}, "2375/tcp": {}, "53/udp": {}}
	got, err := healthPorts(&container.Config{ExposedPorts: exposed})
	if err != nil || !slices.Equal(got, []int{2375, 2376}) {
		t.Errorf("exposed: %v %v", got, err)
	}
	got, err = healthPorts(&container.Config{ExposedPorts: exposed, Env: []string{"A=1", "healthcheck_tcp_port=2376"}})
	if err != nil || !slices.Equal(got, []int{2376}) {
		t.Errorf("HEALTHCHECK_TCP_PORT: %v %v", got, err)
	}
	if _, err := healthPorts(&container.Config{Env: []string{"HEALTHCHECK_TCP_PORT=web"}}); err == nil {
		t.Error("a port that is no number passed")
	}
	many := nat.PortSet{}
	for p := 8000; p < 8030; p++ {
		many[nat.Port(strconv.Itoa(p)+"/tcp")] = struct{}{}
	}
	if got, _ := healthPorts(&container.Config{ExposedPorts: many}); len(got) != maxPortsCheck || got[0] != 8000 {
		t.Errorf("30 exposed ports gave %v", got)
	}
}
