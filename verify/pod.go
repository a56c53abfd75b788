package verify

import (
	"bytes"
	"errors"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// podArgs is a manifest's containers: name, then command and args.
type podArgs map[string][]string

// readPod reads a static Pod manifest's containers, the one reader for
// --apiserver-manifest and --manifests-dir. It never blocks on a FIFO or
// device (regular.ReadFile), and names what is wrong in one line: what
// is the manifest's role in messages ("apiserver manifest", "manifest").
func readPod(path, what string) (podArgs, error) {
	data, err := regular.ReadFile(path, regular.MaxManifest)
	if err != nil {
		return nil, input.Errorf("read %s %s: %w", what, path, pathx.UnwrapPath(err))
	}
	var pod struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Containers []struct {
				Name    string   `yaml:"name"`
				Command []string `yaml:"command"`
				Args    []string `yaml:"args"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	}
	// A file that is not a YAML mapping at all (a host name, a shell
	// script) is named as such, not with yaml.v3's dump of the Go type.
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err == nil && len(root.Content) > 0 && root.Content[0].Kind != yaml.MappingNode {
		return nil, input.Errorf("%s %s: not a Kubernetes manifest (a YAML mapping with kind: Pod); give a static Pod manifest, such as /etc/kubernetes/manifests/kube-apiserver.yaml", what, path)
	}
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&pod); errors.Is(err, io.EOF) {
		return nil, input.Errorf("%s %s: the file is empty", what, path)
	} else if err != nil {
		return nil, input.Errorf("parse %s %s: %w", what, path, err)
	}
	if pod.Kind != "Pod" {
		return nil, input.Errorf("%s %s: kind is %q, want a Pod", what, path, pod.Kind)
	}
	out := podArgs{}
	for _, c := range pod.Spec.Containers {
		out[c.Name] = append(slices.Clone(c.Command), c.Args...)
	}
	return out, nil
}
