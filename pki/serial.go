package pki

import (
	"fmt"
	"math/big"
	"strings"
)

// ParseSerial reads a serial as operators and the EtcdCluster's
// spec.revocations write it (hex, with or without colons or 0x, any
// case) and returns it and its canonical form, lower-case hex as Serial
// prints it; false when it is not a positive hexadecimal number.
func ParseSerial(s string) (*big.Int, string, bool) {
	n, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x"), 16)
	if !ok || n.Sign() <= 0 {
		return nil, "", false
	}
	return n, fmt.Sprintf("%x", n), true
}
