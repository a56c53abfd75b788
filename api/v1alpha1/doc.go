// Package v1alpha1 is the etcdpki.io/v1alpha1 API: the EtcdCluster
// resource the controller and the agents work from, and the names they
// agree on (signers, annotations, identities, the CA Secret and the trust
// ConfigMap).
//
// EtcdCluster's spec is the cluster spec file with the same field names;
// it is validated by the same code (cluster.Parse), so a spec that init
// accepts from a file is accepted here and nothing else is.
//
// +kubebuilder:object:generate=true
// +groupName=etcdpki.io
package v1alpha1
