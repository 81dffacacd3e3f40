package localcluster

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// CustomMetricsURL is where the custom-metrics test adapter that
// `hack/cluster.sh custom-metrics` runs takes the values it then serves as
// custom.metrics.k8s.io.
const CustomMetricsURL = "http://127.0.0.1:8080/write-metrics"

// PodMetric keeps writing one value of a per-pod metric for every pod of a
// workload, the new ones included, as each model server's /metrics would
// report it to Prometheus and prometheus-adapter would serve it.
type PodMetric struct {
	mu    sync.Mutex
	value string
	stop  func()
}

// WritePodMetric starts writing metric = value for the pods of instance in ns,
// every two seconds, until Stop.
func WritePodMetric(k Kubectl, ns, instance, metric, value string) *PodMetric {
	m := &PodMetric{value: value}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			m.mu.Lock()
			v := m.value
			m.mu.Unlock()
			var pods corev1.PodList
			_ = k.GetJSON(&pods, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+instance)
			for _, p := range pods.Items {
				url := fmt.Sprintf("%s/namespaces/%s/pods/%s/%s", CustomMetricsURL, ns, p.Name, metric)
				if resp, err := http.Post(url, "application/json", strings.NewReader(fmt.Sprintf("%q", v))); err == nil {
					resp.Body.Close()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	m.stop = func() { close(done); <-finished }
	return m
}

// Set changes the value written from the next round on.
func (m *PodMetric) Set(value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.value = value
}

// Stop ends the writing.
func (m *PodMetric) Stop() { m.stop() }
