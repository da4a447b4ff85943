package deploy

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// shardedDir is the sharded crawl's kustomization: applied instead of the single CronJob, so it
// is not part of the parent kustomization and has this test of its own.
var shardedDir = filepath.Join(manifestDir, "sharded")

// TestShardedIndexedJob renders the sharded example and checks each shard's pod as
// TestManifests checks a pod, with JOB_COMPLETION_INDEX expanded as the kubelet does: the Job
// is Indexed with as many completions as --shards says, and every shard has a configuration
// of its own with its own credentials and state file, and the same index.
func TestShardedIndexedJob(t *testing.T) {
	objs := &objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	rendered, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), shardedDir)
	if err != nil {
		t.Fatalf("render %s: %v", shardedDir, err)
	}
	for _, r := range rendered.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		objs.add(t, shardedDir, y)
	}
	uid, gid := dockerUser(t, filepath.Join("..", "Dockerfile"))
	if len(objs.workloads) != 1 || objs.workloads[0].cronJob == nil {
		t.Fatalf("want one CronJob in %s, got %d workloads", shardedDir, len(objs.workloads))
	}
	cj := objs.workloads[0].cronJob
	checkCronJob(t, cj)
	job := cj.Spec.JobTemplate.Spec
	if job.CompletionMode == nil || *job.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v: want Indexed", job.CompletionMode)
	}
	pod := job.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	args := pod.Containers[0].Args
	i := slices.Index(args, "--shards")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %q: no --shards", args)
	}
	n, err := strconv.Atoi(args[i+1])
	if err != nil || n < 2 {
		t.Fatalf("--shards %q: want a count of 2 or more", args[i+1])
	}
	if job.Completions == nil || int(*job.Completions) != n || job.Parallelism == nil || int(*job.Parallelism) != n {
		t.Errorf("completions %v, parallelism %v: want both %d, as --shards", job.Completions, job.Parallelism, n)
	}
	if !strings.Contains(strings.Join(args, " "), "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("args %q: the config path does not depend on JOB_COMPLETION_INDEX", args)
	}

	statePaths, secretFiles, prefixes := map[string]int{}, map[string]int{}, map[string]bool{}
	for idx := range n {
		shard := pod.DeepCopy()
		c := &shard.Containers[0]
		for j, a := range c.Args {
			c.Args[j] = strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", strconv.Itoa(idx))
		}
		t.Run("shard-"+strconv.Itoa(idx), func(t *testing.T) {
			checkPod(t, objs, *shard, uid, gid)
		})
		cfgPath := c.Args[slices.Index(c.Args, "--config")+1]
		text := mountedConfigMapFile(t, objs, *shard, *c, cfgPath)
		if text == "" {
			continue
		}
		var cfg struct {
			Mimecast struct {
				ClientID         string `json:"client_id"`
				ClientSecretFile string `json:"client_secret_file"`
			} `json:"mimecast"`
			Elasticsearch struct {
				IndexPrefix string `json:"index_prefix"`
			} `json:"elasticsearch"`
			State struct {
				Path string `json:"path"`
			} `json:"state"`
		}
		if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
			t.Fatal(err)
		}
		if j, dup := statePaths[cfg.State.Path]; dup {
			t.Errorf("shards %d and %d share the state file %s", j, idx, cfg.State.Path)
		}
		statePaths[cfg.State.Path] = idx
		if j, dup := secretFiles[cfg.Mimecast.ClientSecretFile]; dup || cfg.Mimecast.ClientSecretFile == "" {
			t.Errorf("shard %d: client_secret_file %q is not its own (shard %d has it)", idx, cfg.Mimecast.ClientSecretFile, j)
		}
		secretFiles[cfg.Mimecast.ClientSecretFile] = idx
		prefixes[cfg.Elasticsearch.IndexPrefix] = true
	}
	if len(prefixes) != 1 {
		t.Errorf("the shards write to different index prefixes %v: together they must be one index", prefixes)
	}
}
