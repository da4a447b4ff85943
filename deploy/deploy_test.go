package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/mimecrawl/mimecrawl/config"
)

const manifestDir = "kubernetes"

// standalone lists the files that are applied on their own rather than through the
// kustomization, each with why.
var standalone = map[string]string{
	"secret.example.yaml": "an example: real secrets come from a secret manager",
	"kustomization.yaml":  "the kustomization itself",
}

// objects is everything the deployment files declare, decoded strictly.
type objects struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	pvcs       map[string]*corev1.PersistentVolumeClaim
	workloads  []workload
}

// workload is one pod template and where it came from.
type workload struct {
	name    string // kind/name, for messages
	pod     corev1.PodSpec
	cronJob *batchv1.CronJob
}

func TestManifests(t *testing.T) {
	objs := loadObjects(t)
	uid, gid := dockerUser(t, filepath.Join("..", "Dockerfile"))

	if len(objs.workloads) == 0 {
		t.Fatal("no workload found in the deployment files")
	}
	var kinds []string
	for _, w := range objs.workloads {
		kinds = append(kinds, w.name)
		t.Run(w.name, func(t *testing.T) {
			checkPod(t, objs, w.pod, uid, gid)
			if w.cronJob != nil {
				checkCronJob(t, w.cronJob)
			}
		})
	}
	for _, want := range []string{"CronJob/mimecrawl", "Job/mimecrawl-full", "Deployment/mimecrawl-alerts"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s among the workloads %v", want, kinds)
		}
	}
}

// loadObjects renders the kustomization in-process (CI needs no kubectl) and reads the
// standalone files, decoding every object strictly: a misspelt field is an error here rather
// than a field the API server silently drops.
func loadObjects(t *testing.T) *objects {
	t.Helper()
	objs := &objects{
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		pvcs:       map[string]*corev1.PersistentVolumeClaim{},
	}

	// The full re-crawl is created on demand from a kustomization of its own.
	for _, dir := range []string{manifestDir, fullRecrawlDir} {
		for _, y := range render(t, filesys.MakeFsOnDisk(), dir) {
			objs.add(t, "kustomize output of "+dir, y)
		}
	}

	// Every file is either in the kustomization or a known standalone file, so nothing
	// escapes these checks.
	var kust struct {
		Resources []string `json:"resources"`
	}
	readYAML(t, filepath.Join(manifestDir, "kustomization.yaml"), &kust)
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if slices.Contains(kust.Resources, base) {
			continue
		}
		if _, ok := standalone[base]; !ok {
			t.Errorf("%s is neither in kustomization.yaml nor a known standalone file", f)
			continue
		}
		if base == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocuments(data) {
			objs.add(t, f, doc)
		}
	}
	return objs
}

// fullRecrawlDir is the kustomization of the one-off full re-crawl.
const fullRecrawlDir = manifestDir + "/full-recrawl"

// render renders the kustomization in dir (in-process: CI needs no kubectl) and returns its
// objects as YAML documents.
func render(t *testing.T, fs filesys.FileSystem, dir string) [][]byte {
	t.Helper()
	rendered, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("render the kustomization in %s: %v", dir, err)
	}
	var out [][]byte
	for _, r := range rendered.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatalf("render %s: %v", r.CurId(), err)
		}
		out = append(out, y)
	}
	return out
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if !strings.HasPrefix(strings.TrimSpace(sc.Text()), "#") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// add decodes one object strictly into its API type.
func (o *objects) add(t *testing.T, from string, doc []byte) {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", from, err)
	}
	strict := func(v any) {
		t.Helper()
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			t.Fatalf("%s: %s: %v", from, meta.Kind, err)
		}
	}
	switch meta.APIVersion + " " + meta.Kind {
	case "v1 Namespace":
		strict(&corev1.Namespace{})
	case "v1 ConfigMap":
		var cm corev1.ConfigMap
		strict(&cm)
		o.configMaps[cm.Name] = &cm
	case "v1 Secret":
		var s corev1.Secret
		strict(&s)
		o.secrets[s.Name] = &s
	case "v1 PersistentVolumeClaim":
		var p corev1.PersistentVolumeClaim
		strict(&p)
		o.pvcs[p.Name] = &p
	case "batch/v1 CronJob":
		var c batchv1.CronJob
		strict(&c)
		o.workloads = append(o.workloads, workload{name: "CronJob/" + c.Name, pod: c.Spec.JobTemplate.Spec.Template.Spec, cronJob: &c})
	case "batch/v1 Job":
		var j batchv1.Job
		strict(&j)
		o.workloads = append(o.workloads, workload{name: "Job/" + j.Name + j.GenerateName, pod: j.Spec.Template.Spec})
	case "apps/v1 Deployment":
		var d appsv1.Deployment
		strict(&d)
		o.workloads = append(o.workloads, workload{name: "Deployment/" + d.Name, pod: d.Spec.Template.Spec})
	default:
		t.Fatalf("%s: unexpected object %s %s; teach this test what to check in it", from, meta.APIVersion, meta.Kind)
	}
}

// dockerUser returns the numeric user and group of the image's final USER instruction, or -1
// (and a test error) when it has none.
func dockerUser(t *testing.T, dockerfile string) (uid, gid int64) {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "USER") {
			user = f[1]
		}
	}
	u, g, _ := strings.Cut(user, ":")
	uid, errU := strconv.ParseInt(u, 10, 64)
	gid, errG := strconv.ParseInt(g, 10, 64)
	if user == "" || errU != nil || errG != nil || uid == 0 {
		// The kubelet can only enforce runAsNonRoot for an image user it can read as a number.
		t.Errorf("%s: USER %q: want a numeric non-root user and group, e.g. USER 65532:65532", dockerfile, user)
		return -1, -1
	}
	return uid, gid
}

func checkCronJob(t *testing.T, c *batchv1.CronJob) {
	t.Helper()
	if c.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q: want Forbid (two runs cannot share the state file)", c.Spec.ConcurrencyPolicy)
	}
	// A killed crawl resumes where it stopped, so a deadline only turns a long first crawl
	// into a failed Job; allow none, or one long enough for a first crawl.
	if d := c.Spec.JobTemplate.Spec.ActiveDeadlineSeconds; d != nil && time.Duration(*d)*time.Second < 24*time.Hour {
		t.Errorf("activeDeadlineSeconds %d (%s): a first crawl takes longer; want none, or at least 24h", *d, time.Duration(*d)*time.Second)
	}
}

// mount is a file path's place in a container: the mount it lies on and its volume.
type mount struct {
	corev1.VolumeMount
	volume corev1.Volume
}

// mountOf returns the mount that holds p (the deepest one, as the kernel resolves it).
func mountOf(c corev1.Container, volumes []corev1.Volume, p string) (mount, bool) {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if p == mp || (m.SubPath == "" && strings.HasPrefix(p, mp+"/")) {
			if best == nil || len(mp) > len(path.Clean(best.MountPath)) {
				best = &c.VolumeMounts[i]
			}
		}
	}
	if best == nil {
		return mount{}, false
	}
	for _, v := range volumes {
		if v.Name == best.Name {
			return mount{VolumeMount: *best, volume: v}, true
		}
	}
	return mount{VolumeMount: *best}, false
}

// provides reports whether the mount m makes the file p appear, and with what key of the
// Secret or ConfigMap.
func (m mount) provides(p string) (key string, ok bool) {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.MountPath)), "/")
	if m.SubPath != "" {
		rel = m.SubPath
	}
	var items []corev1.KeyToPath
	switch {
	case m.volume.Secret != nil:
		items = m.volume.Secret.Items
	case m.volume.ConfigMap != nil:
		items = m.volume.ConfigMap.Items
	default:
		return "", false
	}
	if len(items) == 0 {
		return rel, rel != "" && !strings.Contains(rel, "/")
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key, true
		}
	}
	return "", false
}

func writable(m mount) bool {
	return !m.ReadOnly && (m.volume.EmptyDir != nil || m.volume.PersistentVolumeClaim != nil)
}

// secretEnv matches environment variables that would carry a secret value.
var secretEnv = regexp.MustCompile(`(SECRET|PASSWORD|API_KEY|TOKEN)$`)

func checkPod(t *testing.T, objs *objects, pod corev1.PodSpec, uid, gid int64) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil {
		t.Fatal("pod has no securityContext")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot: want true")
	}
	// The kubelet refuses runAsNonRoot for an image whose user is a name unless runAsUser
	// gives a number; and a different number than the image's would own files the image
	// does not expect.
	for _, id := range []struct {
		field string
		got   *int64
		want  int64
		why   string
	}{
		{"runAsUser", psc.RunAsUser, uid, "the Dockerfile's USER"},
		{"runAsGroup", psc.RunAsGroup, gid, "the Dockerfile's USER group"},
		{"fsGroup", psc.FSGroup, gid, "the Dockerfile's USER group, so that the user can write the state volume"},
	} {
		switch {
		case id.got == nil || *id.got <= 0:
			t.Errorf("pod securityContext.%s %s: want a number above 0 (%s)", id.field, deref(id.got), id.why)
		case id.want > 0 && *id.got != id.want:
			t.Errorf("pod securityContext.%s %d: want %d, %s", id.field, *id.got, id.want, id.why)
		}
	}
	if len(pod.Containers) == 0 {
		t.Fatal("pod has no containers")
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		checkContainer(t, objs, pod, c)
	}
}

func checkContainer(t *testing.T, objs *objects, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("container %s has no securityContext", c.Name)
	default:
		if sc.RunAsUser != nil || sc.RunAsGroup != nil {
			t.Errorf("container %s overrides the pod's user or group", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem: want true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation: want false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: capabilities.drop: want [ALL]", c.Name)
		}
	}

	// CPU limits only throttle; memory is the limit that protects the node.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("container %s: resources.requests.%s is not set", c.Name, r)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		t.Errorf("container %s: resources.limits.memory is not set", c.Name)
	}

	if len(c.EnvFrom) > 0 {
		t.Errorf("container %s: envFrom puts whole objects into the environment; name each variable", c.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("container %s: env %s comes from Secret %s: secrets go in files (mounted, named by a *_FILE variable or a *_file key)",
				c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
		}
		if secretEnv.MatchString(e.Name) {
			t.Errorf("container %s: env %s carries a secret value; use %s_FILE", c.Name, e.Name, e.Name)
		}
		env[e.Name] = e.Value
	}

	args := slices.Concat(c.Command, c.Args)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Errorf("container %s: args %q name no --config file", c.Name, args)
		return
	}
	configPath := args[i+1]
	cfgText := mountedConfigMapFile(t, objs, pod, c, configPath)
	if cfgText == "" {
		return
	}

	// Files the program reads: secrets and the CA. Each must be mounted, secrets from a Secret.
	reads := map[string]string{} // path -> what names it
	for name, v := range env {
		if strings.HasSuffix(name, "_FILE") {
			reads[v] = "env " + name
		}
	}
	fileKeys, statePath := configPaths(t, cfgText)
	for key, p := range fileKeys {
		reads[p] = configPath + ": " + key
	}
	for p, by := range reads {
		if !path.IsAbs(p) {
			t.Errorf("container %s: %s names %q: want an absolute path on a mounted volume", c.Name, by, p)
			continue
		}
		m, ok := mountOf(c, pod.Volumes, p)
		if !ok {
			t.Errorf("container %s: %s names %s, which no volume mounts", c.Name, by, p)
			continue
		}
		key, ok := m.provides(p)
		if !ok || m.volume.Secret == nil {
			t.Errorf("container %s: %s names %s, which volume %s does not provide from a Secret", c.Name, by, p, m.Name)
			continue
		}
		if s, ok := objs.secrets[m.volume.Secret.SecretName]; ok {
			if _, has := s.StringData[key]; !has {
				if _, has := s.Data[key]; !has {
					t.Errorf("container %s: %s needs key %q of Secret %s, which its example lacks", c.Name, by, key, s.Name)
				}
			}
		}
	}

	// Paths the program writes: the state file's directory and the temporary directory, each
	// on a writable volume under the read-only root.
	tmp := env["TMPDIR"]
	if tmp == "" {
		t.Errorf("container %s: TMPDIR is not set; temporary files would go to /tmp", c.Name)
		tmp = "/tmp"
	}
	writes := map[string]string{
		path.Dir(statePath): configPath + ": state.path",
		tmp:                 "TMPDIR",
		"/tmp":              "the conventional temporary directory",
	}
	for p, by := range writes {
		m, ok := mountOf(c, pod.Volumes, p)
		if !ok || !writable(m) {
			t.Errorf("container %s: %s (%s) is not on a writable emptyDir or persistent volume", c.Name, p, by)
		}
	}

	cfg := checkConfigLoads(t, c, env, cfgText, reads)
	if cfg != nil && len(c.Args) > 0 && c.Args[0] == "crawl" {
		// The memory limit holds what the configuration lets a crawl use (config.CrawlMemory,
		// the formula of docs/deploy.md), or the kernel ends the crawl in its busiest minute.
		limit := c.Resources.Limits.Memory()
		if need := int64(cfg.CrawlMemory()); limit.Value() < need {
			t.Errorf("container %s: memory limit %s, but its configuration lets a crawl use up to %.0f MiB (docs/deploy.md, Memory)",
				c.Name, limit, float64(need)/(1<<20))
		}
	}
}

// mountedConfigMapFile returns the text of the file p in container c, which must come from a
// ConfigMap of the deployment files.
func mountedConfigMapFile(t *testing.T, objs *objects, pod corev1.PodSpec, c corev1.Container, p string) string {
	t.Helper()
	m, ok := mountOf(c, pod.Volumes, p)
	if !ok || m.volume.ConfigMap == nil {
		t.Errorf("container %s: --config %s is not mounted from a ConfigMap", c.Name, p)
		return ""
	}
	key, ok := m.provides(p)
	cm := objs.configMaps[m.volume.ConfigMap.Name]
	if !ok || cm == nil || cm.Data[key] == "" {
		t.Errorf("container %s: --config %s: ConfigMap %s has no key %q", c.Name, p, m.volume.ConfigMap.Name, key)
		return ""
	}
	return cm.Data[key]
}

// configPaths returns the file paths the configuration names: each *_file key (the CA, secret
// files) by its key path, and state.path.
func configPaths(t *testing.T, text string) (files map[string]string, statePath string) {
	t.Helper()
	var root yamlv3.Node
	if err := yamlv3.Unmarshal([]byte(text), &root); err != nil {
		t.Fatalf("embedded configuration: %v", err)
	}
	files = map[string]string{}
	walkScalars(&root, "", func(key string, n *yamlv3.Node) {
		switch {
		case key == "state.path":
			statePath = n.Value
		case strings.HasSuffix(key, "_file") && n.Value != "":
			files[key] = n.Value
		}
	})
	if statePath == "" || !path.IsAbs(statePath) {
		t.Errorf("embedded configuration: state.path %q: want an absolute path on the state volume", statePath)
		statePath = "/"
	}
	return files, statePath
}

// walkScalars calls fn with the dotted key path of every scalar mapping value.
func walkScalars(n *yamlv3.Node, prefix string, fn func(key string, n *yamlv3.Node)) {
	switch n.Kind {
	case yamlv3.DocumentNode:
		for _, c := range n.Content {
			walkScalars(c, prefix, fn)
		}
	case yamlv3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			if v := n.Content[i+1]; v.Kind == yamlv3.ScalarNode {
				fn(key, v)
			} else {
				walkScalars(v, key, fn)
			}
		}
	}
}

// checkConfigLoads runs the embedded configuration through mimecrawl's own loader with the
// container's environment, every file the pod mounts recreated under a temporary root, so that
// what the program would refuse at start fails here.
func checkConfigLoads(t *testing.T, c corev1.Container, env map[string]string, text string, reads map[string]string) *config.Config {
	t.Helper()
	root := t.TempDir()
	under := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for p := range reads {
		if err := os.MkdirAll(filepath.Dir(under(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(under(p), []byte("placeholder\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var doc yamlv3.Node
	if err := yamlv3.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	walkScalars(&doc, "", func(key string, n *yamlv3.Node) {
		if (key == "state.path" || strings.HasSuffix(key, "_file")) && path.IsAbs(n.Value) {
			if key == "state.path" {
				if err := os.MkdirAll(filepath.Dir(under(n.Value)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			n.Value = under(n.Value)
		}
	})
	var buf bytes.Buffer
	enc := yamlv3.NewEncoder(&buf)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	getenv := func(name string) string {
		v := env[name]
		if strings.HasSuffix(name, "_FILE") && path.IsAbs(v) {
			return under(v)
		}
		return v
	}
	cfg, err := config.Parse(buf.Bytes(), getenv)
	if err != nil {
		t.Errorf("container %s: the embedded configuration does not load:\n%v", c.Name, err)
	}
	return cfg
}

func deref(p *int64) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
