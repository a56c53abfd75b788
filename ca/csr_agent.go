package ca

// NewCSR makes a new key in memory and a certificate request for it, as
// r asks (subject, SANs, key algorithm and size): what an agent sends to
// the signer. The key is returned, never written: its one write is the
// atomic switch of the pair on the host that made it.
//
// A thin wrapper over Request.csr until the signer's ca/csr.go lands with
// the same signature (the coordinator keeps one of the two).
func NewCSR(r Request) (csrPEM, keyPEM []byte, err error) {
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	return r.csr()
}
