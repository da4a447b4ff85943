package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are every way the manifests are applied: the crawl and the poller, the
// sharded crawl, the full re-crawl.
var kustomizations = []string{manifestDir, shardedDir, fullRecrawlDir}

// images returns the image of every container the kustomization in dir renders.
func images(t *testing.T, fsys filesys.FileSystem, dir string) []string {
	t.Helper()
	var out []string
	for _, doc := range render(t, fsys, dir) {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if k == "containers" || k == "initContainers" {
						for _, c := range x.([]any) {
							out = append(out, c.(map[string]any)["image"].(string))
						}
						continue
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(obj)
	}
	return out
}

// TestOneImageSetting: the image of every pod, in every kustomization, comes from one
// setting (the image component): changed there, it changes everywhere, the sharded CronJob and
// the full re-crawl included, and no manifest names a registry of its own.
func TestOneImageSetting(t *testing.T) {
	const want = "registry.example.com/mimecrawl:REPLACE_WITH_VERSION"
	for _, dir := range kustomizations {
		imgs := images(t, filesys.MakeFsOnDisk(), dir)
		if len(imgs) == 0 {
			t.Errorf("%s renders no container", dir)
		}
		for _, img := range imgs {
			if img != want {
				t.Errorf("%s renders image %q, want %q from image/kustomization.yaml", dir, img, want)
			}
		}
	}

	// The same tree in memory, with the version set as docs/deploy.md says: one file changes.
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(manifestDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if p != filepath.Join(manifestDir, "image", "kustomization.yaml") && strings.Contains(string(data), "registry.example.com") {
			t.Errorf("%s names a registry: the image is set in image/kustomization.yaml only", p)
		}
		if strings.HasSuffix(p, filepath.Join("image", "kustomization.yaml")) {
			data = []byte(strings.Replace(string(data), "newTag: REPLACE_WITH_VERSION", "newTag: v1.2.3", 1))
		}
		return mem.WriteFile(p, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range kustomizations {
		for _, img := range images(t, mem, dir) {
			if img != "registry.example.com/mimecrawl:v1.2.3" {
				t.Errorf("with the version set once, %s renders image %q", dir, img)
			}
		}
	}
}

// TestFullRecrawlJob: the full re-crawl has one name, so that two never run at once, and is
// deleted a day after it ends, so that the name is free for the next (docs/deploy.md).
func TestFullRecrawlJob(t *testing.T) {
	docs := render(t, filesys.MakeFsOnDisk(), fullRecrawlDir)
	if len(docs) != 1 {
		t.Fatalf("%s renders %d objects, want the Job", fullRecrawlDir, len(docs))
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(docs[0], &job); err != nil {
		t.Fatal(err)
	}
	if job.Name != "mimecrawl-full" || job.GenerateName != "" {
		t.Errorf("name %q, generateName %q: want the one name mimecrawl-full", job.Name, job.GenerateName)
	}
	if ttl := job.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != 86400 {
		t.Errorf("ttlSecondsAfterFinished %v: want 86400 (a day), as docs/deploy.md says", ttl)
	}
	if args := job.Spec.Template.Spec.Containers[0].Args; len(args) < 2 || args[0] != "crawl" || args[1] != "--full" {
		t.Errorf("args %q: want crawl --full", args)
	}
}
