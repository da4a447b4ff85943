package deploy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/mimecrawl/mimecrawl/config"
	"github.com/mimecrawl/mimecrawl/metrics"
)

// The shipped alerts Deployment's probes, played against the poller's real health handler on a
// simulated clock, the way the kubelet plays them: from initialDelaySeconds, one probe every
// periodSeconds, a restart after failureThreshold failures in a row.
//
// With one source forbidden (403) and one failing on every pass for a day, the liveness probe
// never fails: no restart (a restart grants no permission and mends no outage). A loop that
// stops showing signs of life is restarted, within the stall bound and the probe's window.
func TestAlertsProbesRestartOnlyAStuckPoller(t *testing.T) {
	objs := loadObjects(t)
	var c *corev1.Container
	var pod corev1.PodSpec
	for _, w := range objs.workloads {
		if w.name == "Deployment/mimecrawl-alerts" && len(w.pod.Containers) == 1 {
			pod, c = w.pod, &w.pod.Containers[0]
		}
	}
	if c == nil {
		t.Fatal("no single-container Deployment/mimecrawl-alerts")
	}
	live, ready := c.LivenessProbe, c.ReadinessProbe
	if live == nil || live.HTTPGet == nil || live.HTTPGet.Path != "/healthz" {
		t.Fatalf("liveness probe %+v: want an httpGet of /healthz", live)
	}
	if ready == nil || ready.HTTPGet == nil || ready.HTTPGet.Path != "/readyz" {
		t.Fatalf("readiness probe %+v: want an httpGet of /readyz", ready)
	}
	for _, p := range []*corev1.Probe{live, ready} {
		if p.HTTPGet.Port.String() != "metrics" || p.PeriodSeconds <= 0 || p.FailureThreshold <= 0 {
			t.Errorf("probe %s: port %s, period %d, failureThreshold %d: want the metrics port and both set",
				p.HTTPGet.Path, p.HTTPGet.Port.String(), p.PeriodSeconds, p.FailureThreshold)
		}
	}
	interval := shippedPollInterval(t, objs, pod, *c)
	t.Logf("poll interval %s; liveness every %ds, %d failures restart, after %ds", interval, live.PeriodSeconds, live.FailureThreshold, live.InitialDelaySeconds)

	type source struct {
		name   string
		result metrics.PassResult
		stopAt time.Duration // the loop dies here; 0: never
	}
	// play runs the poller's reports and the probe for span; it returns when the kubelet
	// would have restarted the container (0 when never) and how often readiness failed.
	play := func(sources []source, span time.Duration) (restartAt time.Duration, notReady int) {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		now := start
		names := make([]string, len(sources))
		for i, s := range sources {
			names[i] = s.name
		}
		h := metrics.NewHealth(names, metrics.HealthOptions{Interval: interval, Now: func() time.Time { return now }})
		srv := h.Handler()
		probe := func(p *corev1.Probe) bool {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.HTTPGet.Path, nil))
			return rec.Code >= 200 && rec.Code < 400 // what the kubelet counts as success
		}
		pass := time.Minute // each pass makes calls for a minute, then reports
		failures := 0
		for el := time.Duration(0); el <= span; el += time.Second {
			now = start.Add(el)
			for _, s := range sources {
				if s.stopAt > 0 && el >= s.stopAt {
					continue
				}
				in := el % (interval + pass)
				switch {
				case in < pass && in%(10*time.Second) == 0:
					h.Beat(s.name)
				case in == pass:
					h.Pass(metrics.SourcePass{Source: s.name, Result: s.result, Error: "answered 503"})
				}
			}
			if el < time.Duration(live.InitialDelaySeconds)*time.Second {
				continue
			}
			since := el - time.Duration(live.InitialDelaySeconds)*time.Second
			if since%(time.Duration(ready.PeriodSeconds)*time.Second) == 0 && !probe(ready) {
				notReady++
			}
			if since%(time.Duration(live.PeriodSeconds)*time.Second) != 0 {
				continue
			}
			if probe(live) {
				failures = 0
				continue
			}
			if failures++; failures >= int(live.FailureThreshold) {
				return el, notReady
			}
		}
		return 0, notReady
	}

	healthy := []source{{"threats", metrics.PassOK, 0}, {"dlp", metrics.PassForbidden, 0}, {"url_protection", metrics.PassFailed, 0}}
	restart, notReady := play(healthy, 24*time.Hour)
	if restart != 0 {
		t.Errorf("a poller with a forbidden and a failing source was restarted after %s", restart)
	}
	if notReady == 0 {
		t.Errorf("readiness never reported the source failing for a day")
	}

	stuck := time.Hour
	dead := []source{{"threats", metrics.PassOK, 0}, {"dlp", metrics.PassForbidden, stuck}}
	restart, _ = play(dead, 24*time.Hour)
	bound := stuck + interval + metrics.DefaultStallGrace + time.Duration(live.FailureThreshold+1)*time.Duration(live.PeriodSeconds)*time.Second
	if restart == 0 || restart > bound {
		t.Errorf("a loop dead at %s was restarted at %s; want within %s", stuck, restart, bound)
	}
}

// shippedPollInterval is alerts.poll_interval of the configuration the Deployment mounts, or
// the default.
func shippedPollInterval(t *testing.T, objs *objects, pod corev1.PodSpec, c corev1.Container) time.Duration {
	t.Helper()
	args := c.Args
	var cfgPath string
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath = args[i+1]
		}
	}
	text := mountedConfigMapFile(t, objs, pod, c, cfgPath)
	var doc struct {
		Alerts struct {
			PollInterval string `yaml:"poll_interval"`
		} `yaml:"alerts"`
	}
	if err := yamlv3.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(doc.Alerts.PollInterval); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("alerts.poll_interval %q: %v", s, err)
		}
		return d
	}
	return config.Default().Alerts.PollInterval.D()
}
