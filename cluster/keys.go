package cluster

import (
	"fmt"
	"strconv"
	"strings"
)

// keySizes is the one set of key rules: the algorithms and sizes etcdpki
// issues, the default first. cfssl accepts some other sizes we don't want
// and panics on others, so the spec parser and the signer (package ca)
// both check against this list and nothing else reaches cfssl.
var keySizes = map[string][]int{
	AlgECDSA: {256, 384},
	AlgRSA:   {2048, 3072, 4096},
}

// keyOrder is the order algorithms are listed in messages.
var keyOrder = []string{AlgECDSA, AlgRSA}

// Supported reports whether etcdpki issues keys of this algorithm and size.
func (k KeySpec) Supported() bool {
	for _, s := range keySizes[k.Algorithm] {
		if s == k.Size {
			return true
		}
	}
	return false
}

// DefaultKeySize is the size used when the spec names only the algorithm.
func DefaultKeySize(alg string) int { return keySizes[alg][0] }

// KeySizesText lists an algorithm's sizes for a message: "256 or 384".
func KeySizesText(alg string) string {
	var s []string
	for _, n := range keySizes[alg] {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// SupportedKeysText lists every supported key: "ecdsa-256, ecdsa-384, ...".
func SupportedKeysText() string {
	var s []string
	for _, alg := range keyOrder {
		for _, n := range keySizes[alg] {
			s = append(s, fmt.Sprintf("%s-%d", alg, n))
		}
	}
	return strings.Join(s, ", ")
}
