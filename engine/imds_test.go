package engine

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// imdsFake answers as EC2's metadata service does for IMDSv2: every read needs the
// token a PUT gave out.
func imdsFake(t *testing.T, action, rebalance string) (*Metadata, *int) {
	puts := new(int)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		*puts++
		_, _ = w.Write([]byte("tok"))
	})
	doc := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != "tok" {
				http.Error(w, "", http.StatusUnauthorized)
				return
			}
			if body == "" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("GET /latest/meta-data/spot/instance-action", doc(action))
	mux.HandleFunc("GET /latest/meta-data/events/recommendations/rebalance", doc(rebalance))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
	return NewMetadata(dial), puts
}

func TestSpotNoticeReadsTheActionAndTheRebalanceWithOneToken(t *testing.T) {
	m, puts := imdsFake(t, `{"action": "terminate", "time": "2026-12-03T12:03:04Z"}`, `{"noticeTime": "2026-12-03T12:00:00Z"}`)
	for range 2 {
		n, err := m.SpotNotice(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !n.Reclaim() || n.Action != "terminate" || !n.Time.Equal(time.Date(2026, 12, 3, 12, 3, 4, 0, time.UTC)) || n.Rebalance.IsZero() {
			t.Fatalf("notice %+v", n)
		}
	}
	if *puts != 1 {
		t.Fatalf("%d token requests for two reads, want 1", *puts)
	}
}

func TestSpotNoticeIsEmptyWhileEC2HasAnnouncedNothing(t *testing.T) {
	m, _ := imdsFake(t, "", "")
	n, err := m.SpotNotice(context.Background())
	if err != nil || n.Reclaim() || !n.Rebalance.IsZero() {
		t.Fatalf("notice %+v, %v", n, err)
	}
}
