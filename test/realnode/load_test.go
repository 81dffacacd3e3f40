//go:build realnode

package realnode

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"llm-platform/internal/localcluster"
)

// loadRate is the steady request rate of every zero-loss scenario, per
// second; maxLoad bounds one stream, whatever happens.
const (
	loadRate = 20
	maxLoad  = 6 * time.Minute
)

// load sends POST /v1/completions to url at loadRate per second, each on a
// new connection from the node namespace client dials from, until stop.
type load struct {
	mu       sync.Mutex
	res      localcluster.LoadResult
	started  time.Time
	done     chan struct{}
	stopOnce sync.Once
	timedOut bool
	wg       sync.WaitGroup
}

func startLoad(scenario string, client *http.Client, url string) *load {
	l := &load{res: localcluster.LoadResult{Scenario: scenario, Errors: map[string]int{}, Pods: map[string]int{}}, started: time.Now(), done: make(chan struct{})}
	body := []byte(`{"model":"tiny","prompt":"hello","max_tokens":8}`)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / loadRate)
		defer tick.Stop()
		deadline := time.After(maxLoad)
		for {
			select {
			case <-l.done:
				return
			case <-deadline:
				l.mu.Lock()
				l.timedOut = true
				l.mu.Unlock()
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				pod, err := send(client, url, body)
				l.mu.Lock()
				defer l.mu.Unlock()
				l.res.Sent++
				if err != nil {
					l.res.Failed++
					l.res.Errors[err.Error()]++
					return
				}
				l.res.Pods[pod]++
			}()
		}
	}()
	return l
}

func send(client *http.Client, url string, body []byte) (pod string, err error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		// The address of each attempt varies; the kind of error does not.
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "", fmt.Errorf("%s", msg)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Served-By"), nil
}

// TimedOut says the stream stopped at maxLoad, before Stop.
func (l *load) TimedOut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timedOut
}

// Stop ends the stream, waits for the requests in flight and returns the
// count; a second Stop returns the same.
func (l *load) Stop() localcluster.LoadResult {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	r.Seconds = time.Since(l.started).Seconds()
	if r.Seconds > 0 {
		r.Rate = float64(r.Sent) / r.Seconds
	}
	return r
}
