package engine

import (
	"testing"
	"time"
)

func TestParseStatusOrdersCloudInitStagesAsTheyRan(t *testing.T) {
	status := `{"v1": {"datasource": "DataSourceNoCloud", "stage": null,
 "modules-final": {"errors": [], "start": 110.5, "finished": 148.75},
 "init-local": {"errors": [], "start": 100.0, "finished": 100.25},
 "init": {"errors": [], "start": 101.0, "finished": 101.5},
 "modules-config": {"errors": [], "start": 110.0, "finished": null}}}`
	got := parseStatusAt(status, 0).String()
	if want := "init-local 300ms, init 500ms, modules-final 38.3s"; got != want {
		t.Fatalf("got %q, want %q (a stage without its finish is left out)", got, want)
	}
	if r := parseStatusAt("not json", 0); len(r.Stages) != 0 {
		t.Fatalf("unreadable status gave %v", r)
	}
	if d := parseStatusAt(`{"v1": {"init": {"start": 1, "finished": 3}}}`, 0).Stages[0].Took; d != 2*time.Second {
		t.Fatal(d)
	}
	if got := parseStatusAt(status, 112.5).String(); got != "init-local 300ms, init 500ms, modules-config 2.5s so far, modules-final 38.3s" {
		t.Fatalf("read at 112.5 on the worker's clock: %q", got)
	}
}
