package kubetest

// SetAPIServerArg sets one flag of the apiserver for its next start (a
// RestartAPIServer), as an operator edits the flags a restart reads.
func (e *Env) SetAPIServerArg(name string, values ...string) {
	e.env.ControlPlane.GetAPIServer().Configure().Set(name, values...)
}

// APIServerArg is the values of one flag the apiserver was last started
// with (or will be, after SetAPIServerArg).
func (e *Env) APIServerArg(name string) []string {
	return e.env.ControlPlane.GetAPIServer().Configure().Get(name).Get(nil)
}
